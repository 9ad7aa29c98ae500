// Generated from ductwork's OpenAPI document by `npm run gen:api`: do not edit.
// `npm run check:api` (run by scripts/test) fails when this file is out of date.

export interface paths {
    "/workflows/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List workflows
         * @description Newest first, each with `last_run`: its newest run, or null. With `q`, only workflows whose name contains `q`, in any case; paging applies to the matches.
         */
        get: operations["list_workflows_workflows__get"];
        put?: never;
        /** Create a workflow */
        post: operations["create_workflow_workflows__post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/validate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Validate a workflow without saving it
         * @description 200 with `valid: false` and the issues for a definition that parses but does not validate; 422 when the body is not a workflow at all.
         */
        post: operations["validate_workflow_workflows_validate_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List executions of every workflow
         * @description Newest first, filtered by `status` (`dead`: runs that failed for good because advancing them kept failing, DUCTWORK_MAX_RUN_REDRIVES; retry one to try it again), `workflow_id`, `trigger` and `parent_execution_id` (the child runs of a run's sub-workflow nodes). Items carry no events: read one execution for its logs. Paged by `limit` and a cursor: the `X-Next-Cursor` header (and `Link: rel=next`) of a full page is the `after` of the next one.
         */
        get: operations["list_all_executions_workflows_executions_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get an execution's status */
        get: operations["get_execution_workflows_executions__execution_id__get"];
        put?: never;
        post?: never;
        /**
         * Delete a finished execution
         * @description Deletes the run with its node states and logs. 409 for a run that has not finished (cancel it first). Finished runs are also deleted by retention (DUCTWORK_RETENTION_DAYS / _RUNS, a workflow's `settings.retention`).
         */
        delete: operations["delete_execution_workflows_executions__execution_id__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}/events/page": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Read a page of an execution's events
         * @description The run's stored events after seq `after`, in order, at most `limit`; `next_after` is the `after` of the next page (null: none stored yet). The same events the live streams send, for a run too long to read at once.
         */
        get: operations["execution_event_page_workflows_executions__execution_id__events_page_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Cancel an execution */
        post: operations["cancel_execution_workflows_executions__execution_id__cancel_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Retry a failed execution from its failed nodes */
        post: operations["retry_execution_workflows_executions__execution_id__retry_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a workflow */
        get: operations["get_workflow_workflows__workflow_id__get"];
        /** Replace a workflow (new version) */
        put: operations["update_workflow_workflows__workflow_id__put"];
        post?: never;
        /** Delete a workflow (its runs stay) */
        delete: operations["delete_workflow_workflows__workflow_id__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/execute": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Execute a workflow
         * @description 200 with the run as it stands when it finished or the wait ended (or an Idempotency-Key found an existing run); 202 when `async_execution` queued a new run.
         */
        post: operations["execute_workflow_workflows__workflow_id__execute_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/executions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a workflow's executions
         * @description Newest first, with their logs; filtered by `status` and `trigger` like `GET /workflows/executions`, paged like it (`after`, `X-Next-Cursor`). 404 for an id that is neither a workflow nor has runs.
         */
        get: operations["list_executions_workflows__workflow_id__executions_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A workflow's token usage and cost per day
         * @description Tokens and cost of the workflow's runs created in the last `days` UTC days (today included), per day and in total, by each run's creation day. 404 for an id that is neither a workflow nor has runs.
         */
        get: operations["workflow_usage_workflows__workflow_id__usage_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/schedule": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A workflow's schedules and their next fire times
         * @description One entry per schedule trigger (none for a workflow without schedules): the last slot that started a run and the next five.
         */
        get: operations["get_schedule_workflows__workflow_id__schedule_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/pause": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Pause a workflow's triggers
         * @description Sets `status: paused` (a new version): its schedules and webhooks stop, manual runs still start. Slots that pass while paused are not caught up. Pausing a paused workflow changes nothing.
         */
        post: operations["pause_workflow_workflows__workflow_id__pause_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/resume": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Resume a paused workflow's triggers
         * @description Sets `status: active` (a new version): schedules fire from the next slot on, webhooks answer again. Resuming an active workflow changes nothing.
         */
        post: operations["resume_workflow_workflows__workflow_id__resume_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/versions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a workflow's versions
         * @description Newest first, paged; each without its definition (read one version for it).
         */
        get: operations["list_versions_workflows__workflow_id__versions_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/versions/diff": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Compare two versions of a workflow
         * @description Nodes by id (added, removed, changed with per-field paths), edges by (from, to, branch), and the workflow's other fields by path. `from` may be newer than `to`: the diff then reads backwards.
         */
        get: operations["diff_versions_workflows__workflow_id__versions_diff_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/versions/{version}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get one version of a workflow
         * @description The workflow as saved in that version (`updated_at`: when it was saved).
         */
        get: operations["get_version_workflows__workflow_id__versions__version__get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/{workflow_id}/versions/{version}/restore": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Restore a version (as a new version)
         * @description Saves that version's definition again as the workflow's newest version, validated as a PUT would be: 422 when it no longer passes today's checks (a node type or credential that is gone, a webhook path another workflow took).
         */
        post: operations["restore_version_workflows__workflow_id__versions__version__restore_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness and store reachability */
        get: operations["health_health_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/node-types": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Node types with their config JSON Schemas */
        get: operations["node_types_node_types_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/trigger-types": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Trigger types with their JSON Schemas
         * @description What a workflow's top-level `triggers` list may hold: each type's description and JSON Schema (for builder UIs, like `/node-types`).
         */
        get: operations["trigger_types_trigger_types_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics
         * @description The Prometheus text exposition format (`text/plain; version=0.0.4`).
         */
        get: operations["metrics_metrics_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ai/workflows/generate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Generate a workflow from a natural-language prompt
         * @description Ask the configured LLM for a workflow, repairing its answer until it validates.
         */
        post: operations["generate_ai_workflows_generate_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Stream an execution's events (Server-Sent Events)
         * @description `event: snapshot` first (the run with its definition), then one frame per event (`id: <seq>`, `event: <type>`, `data: {seq, type, node_id, timestamp, data}`) until `run_finished`; `token` frames (streamed LLM text) have no id. Resume with the `Last-Event-ID` header or `?after=<seq>`. A comment is sent after 15 s of silence. The same stream is available over WebSocket at `/ws/executions/{execution_id}?after=<seq>` (first message `{type: snapshot, run, last_seq}`, close code 1000 after run_finished, 4404 for an unknown id).
         */
        get: operations["execution_events_workflows_executions__execution_id__events_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/resume/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The approval page of a resume link (changes nothing) */
        get: operations["resume_page_resume__token__get"];
        put?: never;
        /** Resume a waiting node by its link (no API key: the link is signed) */
        post: operations["resume_by_link_resume__token__post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/workflows/executions/{execution_id}/nodes/{node_id}/resume": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Resume a waiting node (the API twin of its resume link)
         * @description The body, a JSON object, becomes the node's output (none: `{}`). 409 while the node has not started waiting (Retry-After) or when it is not a wait node; 410 once it was resumed, timed out, or its run ended.
         */
        post: operations["resume_by_api_workflows_executions__execution_id__nodes__node_id__resume_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/credentials": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List credentials (metadata only) */
        get: operations["list_credentials_credentials_get"];
        put?: never;
        /** Create a credential (its data is never shown again) */
        post: operations["create_credential_credentials_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/credentials/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A credential's metadata (never its data) */
        get: operations["get_credential_credentials__name__get"];
        /** Replace a credential's type and data */
        put: operations["replace_credential_credentials__name__put"];
        post?: never;
        /** Delete a credential (409 while saved workflows refer to it, unless force=true) */
        delete: operations["delete_credential_credentials__name__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/credential-types": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The credential types and the JSON Schema of each one's data */
        get: operations["credential_types_credential_types_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Read the audit log (admins)
         * @description Who did what, to what, when and from where: workflow and run actions, API keys, credentials, logins and user changes. Newest first; page with `before=<next_before>`. Entries never hold secret values.
         */
        get: operations["list_audit_audit_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign in (email + password, or an API key): sets the session cookie */
        post: operations["login_auth_login_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** End the session (clears the cookies) */
        post: operations["logout_auth_logout_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Who the request is authenticated as */
        get: operations["me_auth_me_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** API keys: your own, or everyone's for admins (`all=true`) */
        get: operations["list_keys_auth_keys_get"];
        put?: never;
        /** Create an API key (shown once) */
        post: operations["create_key_auth_keys_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/keys/{key_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke an API key (at once, on every process) */
        delete: operations["revoke_key_auth_keys__key_id__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List users */
        get: operations["list_users_auth_users_get"];
        put?: never;
        /** Create a user */
        post: operations["create_user_auth_users_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/users/{user_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Delete a user (their keys are revoked, their sessions ended) */
        delete: operations["delete_user_auth_users__user_id__delete"];
        options?: never;
        head?: never;
        /** Change a user's role, name, password or disabled flag */
        patch: operations["update_user_auth_users__user_id__patch"];
        trace?: never;
    };
    "/setup": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The first-run page: create the first admin (token from `ductwork serve`) */
        get: operations["setup_page_setup_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/setup": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create the first admin with the setup link's token, and sign them in */
        post: operations["complete_setup_auth_setup_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/hooks/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call a webhook (GET)
         * @description Starts a run of the workflow whose webhook trigger serves `path`, if the trigger takes this method and the request passes its auth (no API key). The run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and `path`. An `Idempotency-Key` header starts at most one run per key. Every answer that started or found a run names it in `X-Execution-Id`.
         */
        get: operations["call_hook_get_hooks__path__get"];
        /**
         * Call a webhook (PUT)
         * @description Starts a run of the workflow whose webhook trigger serves `path`, if the trigger takes this method and the request passes its auth (no API key). The run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and `path`. An `Idempotency-Key` header starts at most one run per key. Every answer that started or found a run names it in `X-Execution-Id`.
         */
        put: operations["call_hook_put_hooks__path__put"];
        /**
         * Call a webhook (POST)
         * @description Starts a run of the workflow whose webhook trigger serves `path`, if the trigger takes this method and the request passes its auth (no API key). The run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and `path`. An `Idempotency-Key` header starts at most one run per key. Every answer that started or found a run names it in `X-Execution-Id`.
         */
        post: operations["call_hook_post_hooks__path__post"];
        /**
         * Call a webhook (DELETE)
         * @description Starts a run of the workflow whose webhook trigger serves `path`, if the trigger takes this method and the request passes its auth (no API key). The run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and `path`. An `Idempotency-Key` header starts at most one run per key. Every answer that started or found a run names it in `X-Execution-Id`.
         */
        delete: operations["call_hook_delete_hooks__path__delete"];
        options?: never;
        head?: never;
        /**
         * Call a webhook (PATCH)
         * @description Starts a run of the workflow whose webhook trigger serves `path`, if the trigger takes this method and the request passes its auth (no API key). The run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and `path`. An `Idempotency-Key` header starts at most one run per key. Every answer that started or found a run names it in `X-Execution-Id`.
         */
        patch: operations["call_hook_patch_hooks__path__patch"];
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * AuditEntry
         * @description One line of the append-only audit log; never holds a secret value.
         */
        AuditEntry: {
            /** Id */
            id: string;
            /**
             * At
             * Format: date-time
             */
            at: string;
            /** Actor */
            actor: string;
            /**
             * Actor Name
             * @default
             */
            actor_name: string;
            /** Action */
            action: string;
            /** Target */
            target?: string | null;
            /**
             * Outcome
             * @default ok
             * @enum {string}
             */
            outcome: "ok" | "denied" | "failed";
            /** Client */
            client?: string | null;
            /** Details */
            details?: {
                [key: string]: unknown;
            };
        };
        /**
         * AuditPage
         * @description One page of the audit log, newest first.
         */
        AuditPage: {
            /** Entries */
            entries: components["schemas"]["AuditEntry"][];
            /**
             * Next Before
             * @description Pass as `before` for the next (older) page; null on the last page.
             */
            next_before: string | null;
        };
        /**
         * CredentialCreate
         * @description `POST /credentials`: data is validated against the type's schema (GET /credential-types).
         */
        CredentialCreate: {
            /**
             * Name
             * @description Unique; an identifier so templates read it as `{{ secrets.NAME }}`.
             * @example github_token
             */
            name: string;
            /**
             * Type
             * @description One of: `secret` (A value templates read as {{ secrets.NAME }}.), `http_header` (One HTTP header sent by webhook and data-source api nodes.), `bearer` (Authorization: Bearer <token>.), `basic` (Authorization: Basic (username and password).), `smtp` (An SMTP server for email nodes.), `sql` (A SQLAlchemy database URL for data-source database nodes.), `llm` (An OpenAI-compatible provider for ai-processor nodes.)
             * @example bearer
             */
            type: string;
            /**
             * Data
             * @description The credential's fields; write-only: never returned.
             * @example {
             *       "token": "ghp_..."
             *     }
             */
            data: {
                [key: string]: unknown;
            };
        };
        /**
         * CredentialInUseBody
         * @description 409 of `DELETE /credentials/{name}`: the workflows that still refer to it.
         */
        CredentialInUseBody: {
            /** Detail */
            detail: string;
            /** Workflows */
            workflows: components["schemas"]["WorkflowUsing"][];
        };
        /**
         * CredentialInfo
         * @description What the API shows of a credential: never its data.
         */
        CredentialInfo: {
            /** Name */
            name: string;
            /** Type */
            type: string;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /**
             * Updated At
             * Format: date-time
             */
            updated_at: string;
            /** Created By */
            created_by?: string | null;
        };
        /** CredentialList */
        CredentialList: {
            /** Items */
            items: components["schemas"]["CredentialInfo"][];
            /** Limit */
            limit: number;
            /** Offset */
            offset: number;
        };
        /**
         * CredentialReplace
         * @description `PUT /credentials/{name}`: a new type and data, replacing the old entirely.
         */
        CredentialReplace: {
            /**
             * Type
             * @description One of: `secret` (A value templates read as {{ secrets.NAME }}.), `http_header` (One HTTP header sent by webhook and data-source api nodes.), `bearer` (Authorization: Bearer <token>.), `basic` (Authorization: Basic (username and password).), `smtp` (An SMTP server for email nodes.), `sql` (A SQLAlchemy database URL for data-source database nodes.), `llm` (An OpenAI-compatible provider for ai-processor nodes.)
             */
            type: string;
            /**
             * Data
             * @description The credential's fields; write-only.
             */
            data: {
                [key: string]: unknown;
            };
        };
        /** CredentialType */
        CredentialType: {
            /** Name */
            name: string;
            /** Description */
            description: string;
            /** Secret Fields */
            secret_fields: string[];
            /**
             * Json Schema
             * @description JSON Schema of `data`; secret fields are `writeOnly` with format `password`.
             */
            json_schema: {
                [key: string]: unknown;
            };
        };
        /** EdgeDiff */
        EdgeDiff: {
            /** Added */
            added: components["schemas"]["EdgeView"][];
            /** Removed */
            removed: components["schemas"]["EdgeView"][];
        };
        /**
         * EdgeSpec
         * @description A directed edge. Accepts the seed's `from`/`to` and React Flow's `source`/`target`.
         */
        EdgeSpec: {
            /** From */
            from: string;
            /** To */
            to: string;
            /** Branch */
            branch?: string | null;
            /** Id */
            id?: string | null;
        } & {
            [key: string]: unknown;
        };
        /** EdgeView */
        EdgeView: {
            /** From */
            from: string;
            /** To */
            to: string;
            /** Branch */
            branch?: string | null;
        };
        /**
         * ErrorDetail
         * @description The body of every error except 422: one sentence saying what went wrong.
         */
        ErrorDetail: {
            /** Detail */
            detail: string;
        };
        /**
         * ErrorMessage
         * @description The body of a 502/503 from AI generation: what failed, naming the setting to fix.
         */
        ErrorMessage: {
            /** Message */
            message: string;
        };
        /**
         * EventPage
         * @description A page of a run's events (`GET /workflows/executions/{id}/events/page`).
         */
        EventPage: {
            /**
             * Events
             * @description In seq order, at most `limit` of them.
             */
            events: components["schemas"]["RunEventItem"][];
            /**
             * Next After
             * @description The `after` of the next page (the last seq here); null when no stored event followed this page when it was read (a running run may add more: ask again with the last seq seen, or follow the live stream).
             */
            next_after: number | null;
        };
        /**
         * ExecuteRequest
         * @description SEED.md's execute body.
         */
        ExecuteRequest: {
            /**
             * Inputs
             * @example {
             *       "user_name": "John"
             *     }
             */
            inputs?: {
                [key: string]: unknown;
            };
            /**
             * Async Execution
             * @description false: answer when the run ends (up to DUCTWORK_SYNC_WAIT_SECONDS); true: answer at once with status queued.
             * @default false
             */
            async_execution: boolean;
            /**
             * Wait Seconds
             * @description Override the sync wait for this call.
             */
            wait_seconds?: number | null;
        };
        /**
         * ExecuteView
         * @description `POST /workflows/{id}/execute` (`ductwork.views.execute_view`): the outcome fields
         *     are present once the run has finished.
         */
        ExecuteView: {
            /** Execution Id */
            execution_id: string;
            /** Workflow Id */
            workflow_id: string;
            status: components["schemas"]["RunStatus"];
            /** Message */
            message: string;
            /**
             * Started At
             * Format: date-time
             */
            started_at: string;
            /** End Time */
            end_time?: string | null;
            /** Result */
            result?: unknown;
            /** Error */
            error?: string | null;
            /** Node States */
            node_states?: {
                [key: string]: components["schemas"]["NodeStateView"];
            } | null;
            usage?: components["schemas"]["RunUsage"] | null;
            /** Cost */
            cost?: number | null;
        } & {
            [key: string]: unknown;
        };
        /**
         * FireTime
         * @description One time a schedule fires, in UTC and in the schedule's time zone.
         */
        FireTime: {
            /**
             * Utc
             * Format: date-time
             * @example 2025-03-30T01:00:00Z
             */
            utc: string;
            /**
             * Local
             * Format: date-time
             * @description The same instant in the schedule's `timezone`.
             * @example 2025-03-30T03:00:00+02:00
             */
            local: string;
        };
        /**
         * GenerateRequest
         * @description What to build, and whether to store it.
         */
        GenerateRequest: {
            /**
             * Prompt
             * @description What the workflow should do, in plain words.
             */
            prompt: string;
            /**
             * Save
             * @description Store the workflow too (answer 201 with its id).
             * @default false
             */
            save: boolean;
            /**
             * Model
             * @description Model id at the provider; defaults to DUCTWORK_LLM_DEFAULT_MODEL.
             */
            model?: string | null;
        };
        /**
         * GenerateResult
         * @description `POST /ai/workflows/generate`: the generated workflow; `workflow_id` when saved.
         */
        GenerateResult: {
            workflow: components["schemas"]["WorkflowDefinition"];
            /** Rounds */
            rounds: number;
            /** Saved */
            saved: boolean;
            /** Model */
            model: string;
            /** Cached */
            cached: boolean;
            /** Workflow Id */
            workflow_id?: string | null;
        };
        /**
         * GenerationProblem
         * @description The 422 of AI generation: a `Problem`, plus the rounds spent when the model's
         *     answers never validated (absent when the request itself was invalid).
         */
        GenerationProblem: {
            /** Message */
            message: string;
            /** Detail */
            detail: components["schemas"]["ProblemDetail"][];
            /** Rounds */
            rounds?: number | null;
            /**
             * Workflow
             * @description The last answer as a workflow, when it was a well-formed one the engine refused: open it in an editor with `detail` pinned to its nodes.
             */
            workflow?: {
                [key: string]: unknown;
            } | null;
        };
        /**
         * Health
         * @description `GET /health`: 200 when the store answers (with version and active runs), else 503
         *     with no detail (the cause is in the server's log).
         */
        Health: {
            /**
             * Status
             * @enum {string}
             */
            status: "ok" | "unavailable";
            /**
             * Store
             * @enum {string}
             */
            store: "ok" | "unavailable";
            /** Version */
            version?: string | null;
            /** Active Runs */
            active_runs?: number | null;
        };
        /**
         * HookAccepted
         * @description The run started (`respond: async`) or outlived the sync wait: poll its Location.
         */
        HookAccepted: {
            /** Execution Id */
            execution_id: string;
            /**
             * Status
             * @description queued, running or waiting
             */
            status: string;
        };
        /**
         * HookResult
         * @description `respond: sync`, run succeeded: the run's result (its end node's output), as JSON
         *     unless the end node set another Content-Type for a text result.
         */
        HookResult: unknown;
        /**
         * HookRunFailed
         * @description `respond: sync`: the run failed (or was cancelled). `error` is its summary.
         */
        HookRunFailed: {
            /** Execution Id */
            execution_id: string;
            /**
             * Status
             * @description error or cancelled
             */
            status: string;
            /** Error */
            error: string;
        };
        /** KeyCreate */
        KeyCreate: {
            /** Name */
            name: string;
            /** @description At most your own role (and the owner's). */
            role: components["schemas"]["Role"];
            /**
             * Expires At
             * @description Refused from then on.
             */
            expires_at?: string | null;
            /**
             * User Id
             * @description Admins: make the key for this user.
             */
            user_id?: string | null;
        };
        /** KeyCreated */
        KeyCreated: {
            /** Id */
            id: string;
            /** Name */
            name: string;
            role: components["schemas"]["Role"];
            /**
             * Prefix
             * @description `dw_<prefix>`: the public part, to recognise a key.
             */
            prefix: string;
            /** Owner Id */
            owner_id: string | null;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Expires At */
            expires_at: string | null;
            /** Last Used At */
            last_used_at: string | null;
            /** Revoked At */
            revoked_at: string | null;
            /**
             * Key
             * @description The key itself: shown this once, stored only as a hash.
             */
            key: string;
        };
        /** KeyOut */
        KeyOut: {
            /** Id */
            id: string;
            /** Name */
            name: string;
            role: components["schemas"]["Role"];
            /**
             * Prefix
             * @description `dw_<prefix>`: the public part, to recognise a key.
             */
            prefix: string;
            /** Owner Id */
            owner_id: string | null;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Expires At */
            expires_at: string | null;
            /** Last Used At */
            last_used_at: string | null;
            /** Revoked At */
            revoked_at: string | null;
        };
        /**
         * LastRun
         * @description A workflow's newest run (`ductwork.views.run_summary_view`).
         */
        LastRun: {
            /** Execution Id */
            execution_id: string;
            status: components["schemas"]["RunStatus"];
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Start Time */
            start_time: string | null;
            /** End Time */
            end_time: string | null;
        };
        /**
         * LogLine
         * @description One line of a run's `logs`, read off its events.
         */
        LogLine: {
            /**
             * Timestamp
             * Format: date-time
             */
            timestamp: string;
            /** Node Id */
            node_id: string | null;
            /** Level */
            level: string;
            /** Message */
            message: string;
        };
        /**
         * LoginRequest
         * @description Either `email` and `password`, or `api_key`.
         */
        LoginRequest: {
            /** Email */
            email?: string | null;
            /** Password */
            password?: string | null;
            /** Api Key */
            api_key?: string | null;
        };
        /** MeOut */
        MeOut: {
            /**
             * Kind
             * @enum {string}
             */
            kind: "user" | "key" | "admin_key" | "anonymous";
            role: components["schemas"]["Role"];
            /** Name */
            name: string;
            user?: components["schemas"]["UserOut"] | null;
            /** Key Id */
            key_id?: string | null;
            /** Permissions */
            permissions: components["schemas"]["Permission"][];
            /**
             * Session
             * @description Authenticated by the session cookie.
             */
            session: boolean;
        };
        /**
         * ModelUsage
         * @description A run's usage of one model.
         */
        ModelUsage: {
            /** Prompt Tokens */
            prompt_tokens: number;
            /** Completion Tokens */
            completion_tokens: number;
            /** Cost */
            cost: number;
            /** Calls */
            calls: number;
        };
        /** NodeChangeView */
        NodeChangeView: {
            /** Id */
            id: string;
            /** Changes */
            changes: components["schemas"]["ValueChange"][];
        };
        /** NodeDiff */
        NodeDiff: {
            /**
             * Added
             * @description Ids of nodes only `to` has.
             */
            added: string[];
            /**
             * Removed
             * @description Ids of nodes only `from` has.
             */
            removed: string[];
            /** Changed */
            changed: components["schemas"]["NodeChangeView"][];
        };
        /**
         * NodeSpec
         * @description One node of a workflow as the builder saved it.
         */
        NodeSpec: {
            /** Id */
            id: string;
            /** Type */
            type: string;
            /** Config */
            config?: {
                [key: string]: unknown;
            };
            position?: components["schemas"]["Position"] | null;
            /** Name */
            name?: string | null;
            retry?: components["schemas"]["RetryPolicy"] | null;
            /** Timeout Seconds */
            timeout_seconds?: number | null;
            /**
             * On Error
             * @default fail
             * @enum {string}
             */
            on_error: "fail" | "continue" | "branch";
            /** Parent */
            parent?: string | null;
        } & {
            [key: string]: unknown;
        };
        /**
         * NodeStateView
         * @description One node's state in a run (extra keys: node-specific metadata, e.g. `parked`).
         */
        NodeStateView: {
            status: components["schemas"]["NodeStatus"];
            /** Output */
            output?: unknown;
            /** Cached */
            cached: boolean;
            /** Latency Ms */
            latency_ms: number | null;
            /** Error */
            error: string | null;
            /** Attempts */
            attempts: number;
            /** Started At */
            started_at: string | null;
            /** Finished At */
            finished_at: string | null;
            /** Branch */
            branch?: string | null;
            /** Wake At */
            wake_at?: string | null;
        } & {
            [key: string]: unknown;
        };
        /**
         * NodeStatus
         * @enum {string}
         */
        NodeStatus: "pending" | "running" | "waiting" | "completed" | "failed" | "skipped" | "cancelled";
        /**
         * NodeType
         * @description A node type with the JSON Schema of its config, for builder UIs.
         */
        NodeType: {
            /** Type */
            type: string;
            /** Description */
            description: string;
            /** Config Schema */
            config_schema: {
                [key: string]: unknown;
            };
            /** Branches */
            branches: string[];
            /** Expression Fields */
            expression_fields: string[];
            /** Raw Fields */
            raw_fields?: string[];
            /** Side Effects */
            side_effects: boolean;
        };
        /**
         * Permission
         * @description One kind of action; `ROLE_PERMISSIONS` says which roles hold it.
         * @enum {string}
         */
        Permission: "read" | "run" | "edit" | "credentials:read" | "credentials:write" | "keys:own" | "keys:all" | "users" | "audit" | "metrics";
        /** Position */
        Position: {
            /**
             * X
             * @default 0
             */
            x: number;
            /**
             * Y
             * @default 0
             */
            y: number;
        } & {
            [key: string]: unknown;
        };
        /**
         * Problem
         * @description The 422 body: a summary and every problem found.
         */
        Problem: {
            /** Message */
            message: string;
            /** Detail */
            detail: components["schemas"]["ProblemDetail"][];
        };
        /**
         * ProblemDetail
         * @description One reason a request was refused: the node and field it concerns, and why.
         */
        ProblemDetail: {
            /** Node Id */
            node_id?: string | null;
            /** Field */
            field?: string | null;
            /** Message */
            message: string;
        };
        /**
         * ResumeAnswer
         * @description A resume that was handed over: the run goes on.
         */
        ResumeAnswer: {
            /** Execution Id */
            execution_id: string;
            /** Node Id */
            node_id: string;
            /**
             * Status
             * @default resumed
             */
            status: string;
        };
        /**
         * RetentionPolicy
         * @description How long a workflow's finished runs are kept; unset fields fall back to the
         *     DUCTWORK_RETENTION_* settings. A run is pruned when either rule says so.
         */
        RetentionPolicy: {
            /** Days */
            days?: number | null;
            /** Runs */
            runs?: number | null;
        };
        /**
         * RetryPolicy
         * @description How often a node is tried when it fails with a retryable error.
         */
        RetryPolicy: {
            /**
             * Max Attempts
             * @default 1
             */
            max_attempts: number;
            /**
             * Backoff Seconds
             * @default 1
             */
            backoff_seconds: number;
            /**
             * Backoff Factor
             * @default 2
             */
            backoff_factor: number;
            /**
             * Max Backoff Seconds
             * @default 300
             */
            max_backoff_seconds: number;
            /**
             * Jitter
             * @default 0.5
             */
            jitter: number;
        };
        /** RetryRequest */
        RetryRequest: {
            /**
             * Use Current Definition
             * @description Re-run with the workflow's current definition instead of the run's own.
             * @default false
             */
            use_current_definition: boolean;
        };
        /**
         * Role
         * @description What a user or key may do; each role includes everything of the roles below it.
         * @enum {string}
         */
        Role: "viewer" | "operator" | "editor" | "admin";
        /**
         * RunError
         * @description One entry of a run's `errors`: a node's final failure, or the run's own.
         */
        RunError: {
            /** Timestamp */
            timestamp: string | null;
            /** Node Id */
            node_id: string | null;
            /** Error */
            error?: unknown;
            /** Attempt */
            attempt: number | null;
        };
        /**
         * RunEventItem
         * @description One stored event of a run, as the live streams send it.
         */
        RunEventItem: {
            /** Seq */
            seq: number;
            /** Type */
            type: string;
            /** Node Id */
            node_id: string | null;
            /**
             * Timestamp
             * Format: date-time
             */
            timestamp: string;
            /** Data */
            data: {
                [key: string]: unknown;
            };
        };
        /**
         * RunListItem
         * @description A run in `GET /workflows/executions` (`ductwork.views.run_list_item`): read without
         *     its events, so `logs` is empty; `errors` still holds the run's own error.
         */
        RunListItem: {
            /** Execution Id */
            execution_id: string;
            /** Workflow Id */
            workflow_id: string;
            /** Workflow Version */
            workflow_version: number;
            status: components["schemas"]["RunStatus"];
            /** Start Time */
            start_time: string | null;
            /** End Time */
            end_time: string | null;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Variables */
            variables: {
                [key: string]: unknown;
            };
            /** Node States */
            node_states: {
                [key: string]: components["schemas"]["NodeStateView"];
            };
            /** Result */
            result?: unknown;
            /** Error */
            error: string | null;
            /** Logs */
            logs: components["schemas"]["LogLine"][];
            /** Errors */
            errors: components["schemas"]["RunError"][];
            /** Wake At */
            wake_at?: string | null;
            /** Redrives */
            redrives?: number | null;
            /**
             * Dead Letter
             * @description The engine gave up on the run (see `status=dead`).
             */
            dead_letter: boolean;
            /**
             * Queued Reason
             * @description Why a `queued` run has not started: a concurrency limit is full (`settings.max_concurrent_runs`, DUCTWORK_MAX_ACTIVE_RUNS).
             * @example waiting for a slot: the workflow allows 2 concurrent runs at once (2 active)
             */
            queued_reason?: string | null;
            /**
             * Worker
             * @description The worker holding an unfinished run.
             */
            worker?: string | null;
            /** @description What started the run; null for runs stored before triggers were recorded. */
            trigger: components["schemas"]["RunTrigger"] | null;
            /**
             * Parent Execution Id
             * @description The run whose `sub-workflow` node started this one.
             */
            parent_execution_id?: string | null;
            /**
             * Parent Node Id
             * @description That `sub-workflow` node's id in the parent run.
             */
            parent_node_id?: string | null;
            /**
             * Depth
             * @description Sub-workflow nesting: 0 for a top-level run.
             * @default 0
             */
            depth: number;
            /** @description Token usage and cost so far; null: no LLM call yet. */
            usage?: components["schemas"]["RunUsage"] | null;
            /**
             * Cost
             * @description `usage.cost`, 0 without usage (US dollars).
             * @default 0
             */
            cost: number;
            /**
             * Workflow Name
             * @description The name of the definition the run ran.
             */
            workflow_name: string;
        } & {
            [key: string]: unknown;
        };
        /**
         * RunStatus
         * @enum {string}
         */
        RunStatus: "queued" | "running" | "waiting" | "success" | "error" | "cancelled";
        /**
         * RunStatusFilter
         * @description `status` of the runs lists: a run status, or `dead` for dead letters.
         * @enum {string}
         */
        RunStatusFilter: "queued" | "running" | "waiting" | "success" | "error" | "cancelled" | "dead";
        /**
         * RunTrigger
         * @description What started a run, by `type` (`ductwork.models.Run.trigger`):
         *
         *     - `manual`: `POST /workflows/{id}/execute`, or `ductwork run FILE`;
         *     - `schedule`: one of the workflow's schedules (`key`) at its `slot`, the ISO time
         *       the slot was due;
         *     - `webhook`: a request to `/hooks/{path}` (`path`, `method`);
         *     - `error`: the workflow runs as the error workflow of a failed run (`execution_id`,
         *       `workflow_id`: the run that failed and its workflow);
         *     - `sub-workflow`: a `sub-workflow` node (`node_id`) of run `execution_id` of
         *       workflow `workflow_id` started it.
         */
        RunTrigger: {
            /** @example manual */
            type: components["schemas"]["RunTriggerType"];
            /**
             * Key
             * @description `schedule`: which schedule fired.
             */
            key?: string | null;
            /**
             * Slot
             * @description `schedule`: the time the slot was due (ISO 8601, UTC).
             * @example 2026-12-03T07:40:00Z
             */
            slot?: string | null;
            /**
             * Path
             * @description `webhook`: the hook's path.
             */
            path?: string | null;
            /**
             * Method
             * @description `webhook`: the request's method.
             */
            method?: string | null;
            /**
             * Execution Id
             * @description `error`: the failed run; `sub-workflow`: the parent run.
             */
            execution_id?: string | null;
            /**
             * Workflow Id
             * @description `error`, `sub-workflow`: its workflow.
             */
            workflow_id?: string | null;
            /**
             * Node Id
             * @description `sub-workflow`: the parent's node that started the run.
             */
            node_id?: string | null;
        } & {
            [key: string]: unknown;
        };
        /**
         * RunTriggerType
         * @description What can start a run: the `type` of its `trigger`, and the runs lists' `trigger`.
         * @enum {string}
         */
        RunTriggerType: "manual" | "schedule" | "webhook" | "error" | "sub-workflow";
        /**
         * RunUsage
         * @description A run's token usage and cost so far (`ductwork.usage.RunUsage`).
         */
        RunUsage: {
            /**
             * Prompt Tokens
             * @example 1200
             */
            prompt_tokens: number;
            /**
             * Completion Tokens
             * @example 340
             */
            completion_tokens: number;
            /**
             * Total Tokens
             * @example 1540
             */
            total_tokens: number;
            /**
             * Cost
             * @description US dollars (see `unpriced_calls`).
             * @example 0.00039
             */
            cost: number;
            /**
             * Calls
             * @description Upstream LLM calls, repairs and fallbacks too.
             * @example 2
             */
            calls: number;
            /**
             * Unpriced Calls
             * @description Calls whose cost is unknown (neither reported by the provider nor in DUCTWORK_LLM_PRICES): they count as 0 here and in budgets.
             * @example 0
             */
            unpriced_calls: number;
            /** By Model */
            by_model: {
                [key: string]: components["schemas"]["ModelUsage"];
            };
        };
        /**
         * RunView
         * @description An execution as `GET /workflows/executions/{id}` shows it (`ductwork.views.run_view`).
         */
        RunView: {
            /** Execution Id */
            execution_id: string;
            /** Workflow Id */
            workflow_id: string;
            /** Workflow Version */
            workflow_version: number;
            status: components["schemas"]["RunStatus"];
            /** Start Time */
            start_time: string | null;
            /** End Time */
            end_time: string | null;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Variables */
            variables: {
                [key: string]: unknown;
            };
            /** Node States */
            node_states: {
                [key: string]: components["schemas"]["NodeStateView"];
            };
            /** Result */
            result?: unknown;
            /** Error */
            error: string | null;
            /** Logs */
            logs: components["schemas"]["LogLine"][];
            /** Errors */
            errors: components["schemas"]["RunError"][];
            /** Wake At */
            wake_at?: string | null;
            /** Redrives */
            redrives?: number | null;
            /** Dead Letter */
            dead_letter?: boolean | null;
            /**
             * Queued Reason
             * @description Why a `queued` run has not started: a concurrency limit is full (`settings.max_concurrent_runs`, DUCTWORK_MAX_ACTIVE_RUNS).
             * @example waiting for a slot: the workflow allows 2 concurrent runs at once (2 active)
             */
            queued_reason?: string | null;
            /**
             * Worker
             * @description The worker holding an unfinished run.
             */
            worker?: string | null;
            /** @description What started the run; null for runs stored before triggers were recorded. */
            trigger: components["schemas"]["RunTrigger"] | null;
            /**
             * Parent Execution Id
             * @description The run whose `sub-workflow` node started this one.
             */
            parent_execution_id?: string | null;
            /**
             * Parent Node Id
             * @description That `sub-workflow` node's id in the parent run.
             */
            parent_node_id?: string | null;
            /**
             * Depth
             * @description Sub-workflow nesting: 0 for a top-level run.
             * @default 0
             */
            depth: number;
            /** @description Token usage and cost so far; null: no LLM call yet. */
            usage?: components["schemas"]["RunUsage"] | null;
            /**
             * Cost
             * @description `usage.cost`, 0 without usage (US dollars).
             * @default 0
             */
            cost: number;
        } & {
            [key: string]: unknown;
        };
        /**
         * ScheduleView
         * @description One schedule trigger of a workflow, as `GET /workflows/{id}/schedule` shows it.
         */
        ScheduleView: {
            /**
             * Index
             * @description Its position in the workflow's `triggers`.
             */
            index: number;
            /**
             * Key
             * @description Its slot-key prefix: the trigger's `id`, else a digest of its timing. Runs it starts carry `trigger: {type: schedule, key, slot}`.
             */
            key: string;
            /**
             * Spec
             * @description The trigger as saved, with defaults filled in.
             */
            spec: {
                [key: string]: unknown;
            };
            /** Timezone */
            timezone: string;
            /**
             * Paused
             * @description The workflow is paused: these times fire once resumed.
             */
            paused: boolean;
            /**
             * Last Slot
             * @description The last slot that started a run (UTC), or null when none has.
             */
            last_slot: string | null;
            /**
             * Next
             * @description The next five slots (fewer when `end_at` comes first).
             */
            next: components["schemas"]["FireTime"][];
        };
        /** SessionOut */
        SessionOut: {
            /**
             * Kind
             * @enum {string}
             */
            kind: "user" | "key";
            role: components["schemas"]["Role"];
            user?: components["schemas"]["UserOut"] | null;
            /** Key Id */
            key_id?: string | null;
            /**
             * Csrf Token
             * @description Send it as X-CSRF-Token on unsafe requests.
             */
            csrf_token: string;
            /**
             * Expires At
             * Format: date-time
             */
            expires_at: string;
        };
        /** SetupRequest */
        SetupRequest: {
            /** Token */
            token: string;
            /**
             * Email
             * @example ada@example.com
             */
            email: string;
            /**
             * Display Name
             * @default
             */
            display_name: string;
            /** Password */
            password: string;
        };
        /**
         * TriggerType
         * @description A trigger type (`schedule`, `webhook`) with the JSON Schema of its entry in
         *     a workflow's `triggers` list, for builder UIs.
         */
        TriggerType: {
            /** Type */
            type: string;
            /** Description */
            description: string;
            /** Config Schema */
            config_schema: {
                [key: string]: unknown;
            };
        };
        /**
         * UsageDay
         * @description One UTC day with runs (days without runs are left out).
         */
        UsageDay: {
            /**
             * Runs
             * @example 12
             */
            runs: number;
            /**
             * Prompt Tokens
             * @example 48200
             */
            prompt_tokens: number;
            /**
             * Completion Tokens
             * @example 9310
             */
            completion_tokens: number;
            /**
             * Total Tokens
             * @example 57510
             */
            total_tokens: number;
            /**
             * Cost
             * @description US dollars: providers' reported costs, else DUCTWORK_LLM_PRICES; calls to unpriced models count as 0.
             * @example 0.0412
             */
            cost: number;
            /**
             * Date
             * @description The UTC day (YYYY-MM-DD).
             * @example 2026-12-03
             */
            date: string;
        };
        /**
         * UsageTotals
         * @description Runs created in a span of time, with their tokens and cost summed.
         */
        UsageTotals: {
            /**
             * Runs
             * @example 12
             */
            runs: number;
            /**
             * Prompt Tokens
             * @example 48200
             */
            prompt_tokens: number;
            /**
             * Completion Tokens
             * @example 9310
             */
            completion_tokens: number;
            /**
             * Total Tokens
             * @example 57510
             */
            total_tokens: number;
            /**
             * Cost
             * @description US dollars: providers' reported costs, else DUCTWORK_LLM_PRICES; calls to unpriced models count as 0.
             * @example 0.0412
             */
            cost: number;
        };
        /** UserCreate */
        UserCreate: {
            /**
             * Email
             * @example ada@example.com
             */
            email: string;
            /**
             * Display Name
             * @default
             */
            display_name: string;
            role: components["schemas"]["Role"];
            /** Password */
            password: string;
        };
        /** UserOut */
        UserOut: {
            /** Id */
            id: string;
            /** Email */
            email: string;
            /** Display Name */
            display_name: string;
            role: components["schemas"]["Role"];
            /** Disabled */
            disabled: boolean;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /**
             * Updated At
             * Format: date-time
             */
            updated_at: string;
        };
        /**
         * UserUpdate
         * @description Only the fields given change.
         */
        UserUpdate: {
            /** Display Name */
            display_name?: string | null;
            role?: components["schemas"]["Role"] | null;
            /** Password */
            password?: string | null;
            /** Disabled */
            disabled?: boolean | null;
        };
        /**
         * ValidationReport
         * @description `POST /workflows/validate`: whether the definition is valid, and every issue.
         */
        ValidationReport: {
            /** Valid */
            valid: boolean;
            /** Issues */
            issues: components["schemas"]["ProblemDetail"][];
        };
        /**
         * ValueChange
         * @description One value that differs between the two versions (null where a key is absent).
         */
        ValueChange: {
            /**
             * Path
             * @description Dotted path, e.g. `config.prompt` inside a node.
             */
            path: string;
            /**
             * From
             * @description The value in the older version.
             */
            from: unknown;
            /**
             * To
             * @description The value in the newer version.
             */
            to: unknown;
        };
        /**
         * VersionDiff
         * @description What changed from version `from` to version `to`.
         */
        VersionDiff: {
            /** From */
            from: number;
            /** To */
            to: number;
            nodes: components["schemas"]["NodeDiff"];
            edges: components["schemas"]["EdgeDiff"];
            /**
             * Workflow
             * @description The workflow's other fields: name, variables, settings, triggers...
             */
            workflow: components["schemas"]["ValueChange"][];
        };
        /**
         * VersionListItem
         * @description One saved version of a workflow, without its definition.
         */
        VersionListItem: {
            /**
             * Version
             * @example 3
             */
            version: number;
            /**
             * Created At
             * Format: date-time
             * @description When this version was saved.
             */
            created_at: string;
            /**
             * Name
             * @description The workflow's name in this version.
             */
            name: string;
            /** Node Count */
            node_count: number;
            /** Edge Count */
            edge_count: number;
        };
        /**
         * Workflow
         * @description A stored workflow as the API serves it (`Workflow.public()`): the definition's
         *     fields, edges as `from`/`to`, plus identity, version and times.
         */
        Workflow: {
            /** Name */
            name: string;
            /** Nodes */
            nodes?: components["schemas"]["NodeSpec"][];
            /** Edges */
            edges?: components["schemas"]["EdgeSpec"][];
            /** Variables */
            variables?: unknown[] | {
                [key: string]: unknown;
            };
            /**
             * Status
             * @default active
             */
            status: string;
            /** Metadata */
            metadata?: {
                [key: string]: unknown;
            };
            /** Triggers */
            triggers?: unknown[];
            /** Error Workflow Id */
            error_workflow_id?: string | null;
            settings?: components["schemas"]["WorkflowSettings"];
            /** Id */
            id: string;
            /**
             * Id
             * @description Same as `id` (the seed's MongoDB spelling).
             */
            _id: string;
            /** Version */
            version: number;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /**
             * Updated At
             * Format: date-time
             */
            updated_at: string;
        } & {
            [key: string]: unknown;
        };
        /**
         * WorkflowDefinition
         * @description What a client sends to create or replace a workflow (SEED.md's body, verbatim).
         */
        WorkflowDefinition: {
            /** Name */
            name: string;
            /** Nodes */
            nodes?: components["schemas"]["NodeSpec"][];
            /** Edges */
            edges?: components["schemas"]["EdgeSpec"][];
            /** Variables */
            variables?: unknown[] | {
                [key: string]: unknown;
            };
            /**
             * Status
             * @default active
             */
            status: string;
            /** Metadata */
            metadata?: {
                [key: string]: unknown;
            };
            /** Triggers */
            triggers?: unknown[];
            /** Error Workflow Id */
            error_workflow_id?: string | null;
            settings?: components["schemas"]["WorkflowSettings"];
        } & {
            [key: string]: unknown;
        };
        /**
         * WorkflowListItem
         * @description A workflow in `GET /workflows/`: the stored workflow plus its newest run.
         */
        WorkflowListItem: {
            /** Name */
            name: string;
            /** Nodes */
            nodes?: components["schemas"]["NodeSpec"][];
            /** Edges */
            edges?: components["schemas"]["EdgeSpec"][];
            /** Variables */
            variables?: unknown[] | {
                [key: string]: unknown;
            };
            /**
             * Status
             * @default active
             */
            status: string;
            /** Metadata */
            metadata?: {
                [key: string]: unknown;
            };
            /** Triggers */
            triggers?: unknown[];
            /** Error Workflow Id */
            error_workflow_id?: string | null;
            settings?: components["schemas"]["WorkflowSettings"];
            /** Id */
            id: string;
            /**
             * Id
             * @description Same as `id` (the seed's MongoDB spelling).
             */
            _id: string;
            /** Version */
            version: number;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /**
             * Updated At
             * Format: date-time
             */
            updated_at: string;
            /** @description null when the workflow has never run. */
            last_run: components["schemas"]["LastRun"] | null;
        } & {
            [key: string]: unknown;
        };
        /**
         * WorkflowSettings
         * @description Per-workflow limits: concurrency, budgets, retention (all optional).
         */
        WorkflowSettings: {
            /** Max Concurrent Runs */
            max_concurrent_runs?: number | null;
            /** Max Cost Per Run */
            max_cost_per_run?: number | null;
            /** Max Cost Per Day */
            max_cost_per_day?: number | null;
            retention?: components["schemas"]["RetentionPolicy"] | null;
        };
        /**
         * WorkflowUsage
         * @description `GET /workflows/{id}/usage`.
         */
        WorkflowUsage: {
            /** Workflow Id */
            workflow_id: string;
            /**
             * Since
             * @description 00:00 UTC of the first day counted: runs created since then are in.
             * @example 2026-11-04T00:00:00+00:00
             */
            since: string;
            total: components["schemas"]["UsageTotals"];
            /**
             * Days
             * @description Oldest day first.
             */
            days: components["schemas"]["UsageDay"][];
        };
        /** WorkflowUsing */
        WorkflowUsing: {
            /** Id */
            id: string;
            /** Name */
            name: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    list_workflows_workflows__get: {
        parameters: {
            query?: {
                /** @description Only workflows whose name contains this text, case-insensitively; `%`, `_` and regex characters match themselves. Empty: every workflow. */
                q?: string | null;
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WorkflowListItem"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    create_workflow_workflows__post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WorkflowDefinition"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    validate_workflow_workflows_validate_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WorkflowDefinition"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ValidationReport"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_all_executions_workflows_executions_get: {
        parameters: {
            query?: {
                /** @description Only runs with this status; `dead`: runs the engine gave up on. */
                status?: components["schemas"]["RunStatusFilter"] | null;
                /** @description Only this workflow's runs. */
                workflow_id?: string | null;
                /** @description Only runs started by this trigger type: `manual` (execute), `schedule`, `webhook` (`/hooks/{path}`) or `error` (runs of an error workflow). */
                trigger?: components["schemas"]["RunTriggerType"] | null;
                /** @description Only the runs this run's `sub-workflow` nodes started. */
                parent_execution_id?: string | null;
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
                /** @description The `X-Next-Cursor` of the previous page: the runs after its last run, in the same order. Runs created meanwhile do not shift the pages, and a deep page costs what the first one does. Not with `offset`. */
                after?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    /** @description The `after` of the next page; absent when this page is the last. */
                    "X-Next-Cursor"?: string;
                    /** @description The next page's URL, `<...>; rel="next"` (RFC 8288); absent on the last page. */
                    Link?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunListItem"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_execution_workflows_executions__execution_id__get: {
        parameters: {
            query?: {
                /** @description false: `logs` is empty and `errors` holds only the run's own error, read without the run's events (page them with `GET /workflows/executions/{execution_id}/events/page`). */
                events?: boolean;
                /** @description false: `node_states` is empty (a summary of a large run). */
                node_states?: boolean;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunView"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    delete_execution_workflows_executions__execution_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    execution_event_page_workflows_executions__execution_id__events_page_get: {
        parameters: {
            query?: {
                /** @description Last seq the client has seen. */
                after?: number;
                /** @description Items per page. */
                limit?: number;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EventPage"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    cancel_execution_workflows_executions__execution_id__cancel_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunView"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    retry_execution_workflows_executions__execution_id__retry_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["RetryRequest"] | null;
            };
        };
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunView"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many requests: retry after the Retry-After header's seconds */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    get_workflow_workflows__workflow_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    update_workflow_workflows__workflow_id__put: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WorkflowDefinition"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    delete_workflow_workflows__workflow_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    execute_workflow_workflows__workflow_id__execute_post: {
        parameters: {
            query?: never;
            header?: {
                "idempotency-key"?: string | null;
            };
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["ExecuteRequest"] | null;
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecuteView"];
                };
            };
            /** @description Queued: poll or stream the execution. */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecuteView"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many requests: retry after the Retry-After header's seconds */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    list_executions_workflows__workflow_id__executions_get: {
        parameters: {
            query?: {
                /** @description Only runs with this status; `dead`: runs the engine gave up on. */
                status?: components["schemas"]["RunStatusFilter"] | null;
                /** @description Only runs started by this trigger type: `manual` (execute), `schedule`, `webhook` (`/hooks/{path}`) or `error` (runs of an error workflow). */
                trigger?: components["schemas"]["RunTriggerType"] | null;
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
                /** @description The `X-Next-Cursor` of the previous page: the runs after its last run, in the same order. Runs created meanwhile do not shift the pages, and a deep page costs what the first one does. Not with `offset`. */
                after?: string | null;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    /** @description The `after` of the next page; absent when this page is the last. */
                    "X-Next-Cursor"?: string;
                    /** @description The next page's URL, `<...>; rel="next"` (RFC 8288); absent on the last page. */
                    Link?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunView"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    workflow_usage_workflows__workflow_id__usage_get: {
        parameters: {
            query?: {
                /** @description How many UTC days to sum, today included (1: today only). */
                days?: number;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WorkflowUsage"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_schedule_workflows__workflow_id__schedule_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ScheduleView"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    pause_workflow_workflows__workflow_id__pause_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    resume_workflow_workflows__workflow_id__resume_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_versions_workflows__workflow_id__versions_get: {
        parameters: {
            query?: {
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["VersionListItem"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    diff_versions_workflows__workflow_id__versions_diff_get: {
        parameters: {
            query: {
                /** @description The older version. */
                from: number;
                /** @description The newer version. */
                to: number;
            };
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "from": 1,
                     *       "to": 3,
                     *       "nodes": {
                     *         "added": [
                     *           "email1"
                     *         ],
                     *         "removed": [],
                     *         "changed": [
                     *           {
                     *             "id": "ai1",
                     *             "changes": [
                     *               {
                     *                 "path": "config.prompt",
                     *                 "from": "Hi",
                     *                 "to": "Hello"
                     *               }
                     *             ]
                     *           }
                     *         ]
                     *       },
                     *       "edges": {
                     *         "added": [
                     *           {
                     *             "from": "ai1",
                     *             "to": "email1"
                     *           }
                     *         ],
                     *         "removed": []
                     *       },
                     *       "workflow": [
                     *         {
                     *           "path": "name",
                     *           "from": "Greeter",
                     *           "to": "Greeter v2"
                     *         }
                     *       ]
                     *     }
                     */
                    "application/json": components["schemas"]["VersionDiff"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_version_workflows__workflow_id__versions__version__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
                /** @description A version number. */
                version: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    restore_version_workflows__workflow_id__versions__version__restore_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                workflow_id: string;
                /** @description A version number. */
                version: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Workflow"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    health_health_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description The store is unreachable. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    node_types_node_types_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["NodeType"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    trigger_types_trigger_types_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TriggerType"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    metrics_metrics_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Metrics in the Prometheus text exposition format. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    generate_ai_workflows_generate_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["GenerateRequest"];
            };
        };
        responses: {
            /** @description The generated workflow (not stored). */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GenerateResult"];
                };
            };
            /** @description The generated workflow, stored under `workflow_id`. */
            201: {
                headers: {
                    /** @description The stored workflow's URL. */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GenerateResult"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Empty or oversized prompt, or no valid workflow within the rounds. */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "message": "no valid workflow after 3 rounds; 1 problem remains",
                     *       "detail": [
                     *         {
                     *           "node_id": "a",
                     *           "field": "edges",
                     *           "message": "cycle: a -> b -> a"
                     *         }
                     *       ],
                     *       "rounds": 3
                     *     }
                     */
                    "application/json": components["schemas"]["GenerationProblem"];
                };
            };
            /** @description Too many requests: retry after the Retry-After header's seconds */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The LLM provider failed or refused the request. */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorMessage"];
                };
            };
            /** @description No LLM is configured (DUCTWORK_LLM_API_KEY). */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorMessage"];
                };
            };
        };
    };
    execution_events_workflows_executions__execution_id__events_get: {
        parameters: {
            query?: {
                /** @description Last seq the client has seen. */
                after?: number;
            };
            header?: {
                /** @description Resume after this seq (EventSource sends it). */
                "last-event-id"?: string | null;
            };
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The run's snapshot, then its events until run_finished. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example event: snapshot
                     *     data: {"type": "snapshot", ...}
                     *
                     *     id: 1
                     *     event: run_started
                     *     data: {"seq": 1, "type": "run_started", "node_id": null, ...}
                     */
                    "text/event-stream": unknown;
                };
            };
            /** @description The run has finished and nothing follows the given id. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unknown execution id. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description An invalid id, `after` or Last-Event-ID (the field names which). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    resume_page_resume__token__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The token of a resume link. */
                token: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The approval page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description The link is not valid (not made by this server, or altered) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description No such run or node */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description The run has not reached the node yet (see Retry-After), or it is not a wait node */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description Answered already, timed out, or the run ended: the link is spent */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    resume_by_link_resume__token__post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The token of a resume link. */
                token: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                /**
                 * @example {
                 *       "approved": true,
                 *       "comment": "Looks good"
                 *     }
                 */
                "application/json": {
                    [key: string]: unknown;
                };
                /** @description The approval page's form: the output is {approved: true|false}. */
                "application/x-www-form-urlencoded": {
                    /** @enum {string} */
                    decision: "approve" | "reject";
                };
            };
        };
        responses: {
            /** @description The page's form was answered: a thank-you page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ResumeAnswer"];
                };
            };
            /** @description The link is not valid (not made by this server, or altered) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No such run or node */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The run has not reached the node yet (see Retry-After), or it is not a wait node */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Answered already, timed out, or the run ended: the link is spent */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    resume_by_api_workflows_executions__execution_id__nodes__node_id__resume_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                execution_id: string;
                /** @description The id of the wait node. */
                node_id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": {
                    [key: string]: unknown;
                } | null;
            };
        };
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ResumeAnswer"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The node has not started waiting yet (see Retry-After), or it is not a wait node */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Answered already, timed out, or the run ended: the link is spent */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_credentials_credentials_get: {
        parameters: {
            query?: {
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialList"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    create_credential_credentials_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CredentialCreate"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialInfo"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    get_credential_credentials__name__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A credential's name (an identifier: templates read it as secrets.NAME). */
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialInfo"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    replace_credential_credentials__name__put: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A credential's name (an identifier: templates read it as secrets.NAME). */
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CredentialReplace"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialInfo"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    delete_credential_credentials__name__delete: {
        parameters: {
            query?: {
                /** @description Delete even while workflows refer to it (their runs fail). */
                force?: boolean;
            };
            header?: never;
            path: {
                /** @description A credential's name (an identifier: templates read it as secrets.NAME). */
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Saved workflows refer to it */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialInUseBody"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    credential_types_credential_types_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CredentialType"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    list_audit_audit_get: {
        parameters: {
            query?: {
                /** @description `user:<id>`, `key:<id>`, `admin-key`, `anonymous` or `system`. */
                actor?: string | null;
                /** @description Exact (`run.cancel`) or a prefix ending in `.` (`workflow.`). */
                action?: string | null;
                /** @description e.g. `workflow:<id>`, `execution:<id>`, `key:<id>`. */
                target?: string | null;
                /** @description ISO 8601; entries at or after (UTC if no offset). */
                since?: string | null;
                /** @description ISO 8601; entries at or before (UTC if no offset). */
                until?: string | null;
                /** @description An entry id: only older entries. */
                before?: string | null;
                /** @description Entries per page. */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditPage"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    login_auth_login_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoginRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionOut"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many requests: retry after the Retry-After header's seconds */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    logout_auth_logout_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    me_auth_me_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MeOut"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    list_keys_auth_keys_get: {
        parameters: {
            query?: {
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
                /** @description Admins: every user's keys. */
                all?: boolean;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["KeyOut"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    create_key_auth_keys_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["KeyCreate"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["KeyCreated"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    revoke_key_auth_keys__key_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                key_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    list_users_auth_users_get: {
        parameters: {
            query?: {
                /** @description Items per page. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserOut"][];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    create_user_auth_users_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserCreate"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserOut"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    delete_user_auth_users__user_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                user_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    update_user_auth_users__user_id__patch: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A workflow or execution id. */
                user_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserUpdate"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserOut"];
                };
            };
            /** @description Not authenticated: no valid API key or session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Not found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Conflict with the current state */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    setup_page_setup_get: {
        parameters: {
            query?: {
                /** @description The setup link's token. */
                token?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The setup form. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
        };
    };
    complete_setup_auth_setup_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SetupRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionOut"];
                };
            };
            /** @description Authenticated, but the role may not do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Request body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description Unsupported media type: JSON routes accept application/json only */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many requests: retry after the Retry-After header's seconds */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    call_hook_get_hooks__path__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description respond sync: the run succeeded; the end node may set the status code and headers */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookResult"];
                };
            };
            /** @description respond async, or a sync run still going after its wait */
            202: {
                headers: {
                    /** @description The execution to poll (needs an API key) */
                    Location?: unknown;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookAccepted"];
                };
            };
            /** @description The body does not parse as its Content-Type says, or cannot be stored */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request fails the trigger's auth (token or signature); nothing ran */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No workflow serves this path */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The trigger does not take this method (see the Allow header) */
            405: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The workflow is paused */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is larger than the hook's limit */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is not text in its charset */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many calls to this path */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description respond sync: the run failed */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookRunFailed"];
                };
            };
            /** @description The hook's credential is missing: its owner has to fix it */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    call_hook_put_hooks__path__put: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description respond sync: the run succeeded; the end node may set the status code and headers */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookResult"];
                };
            };
            /** @description respond async, or a sync run still going after its wait */
            202: {
                headers: {
                    /** @description The execution to poll (needs an API key) */
                    Location?: unknown;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookAccepted"];
                };
            };
            /** @description The body does not parse as its Content-Type says, or cannot be stored */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request fails the trigger's auth (token or signature); nothing ran */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No workflow serves this path */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The trigger does not take this method (see the Allow header) */
            405: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The workflow is paused */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is larger than the hook's limit */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is not text in its charset */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many calls to this path */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description respond sync: the run failed */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookRunFailed"];
                };
            };
            /** @description The hook's credential is missing: its owner has to fix it */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    call_hook_post_hooks__path__post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description respond sync: the run succeeded; the end node may set the status code and headers */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookResult"];
                };
            };
            /** @description respond async, or a sync run still going after its wait */
            202: {
                headers: {
                    /** @description The execution to poll (needs an API key) */
                    Location?: unknown;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookAccepted"];
                };
            };
            /** @description The body does not parse as its Content-Type says, or cannot be stored */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request fails the trigger's auth (token or signature); nothing ran */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No workflow serves this path */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The trigger does not take this method (see the Allow header) */
            405: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The workflow is paused */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is larger than the hook's limit */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is not text in its charset */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many calls to this path */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description respond sync: the run failed */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookRunFailed"];
                };
            };
            /** @description The hook's credential is missing: its owner has to fix it */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    call_hook_delete_hooks__path__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description respond sync: the run succeeded; the end node may set the status code and headers */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookResult"];
                };
            };
            /** @description respond async, or a sync run still going after its wait */
            202: {
                headers: {
                    /** @description The execution to poll (needs an API key) */
                    Location?: unknown;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookAccepted"];
                };
            };
            /** @description The body does not parse as its Content-Type says, or cannot be stored */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request fails the trigger's auth (token or signature); nothing ran */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No workflow serves this path */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The trigger does not take this method (see the Allow header) */
            405: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The workflow is paused */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is larger than the hook's limit */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is not text in its charset */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many calls to this path */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description respond sync: the run failed */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookRunFailed"];
                };
            };
            /** @description The hook's credential is missing: its owner has to fix it */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
    call_hook_patch_hooks__path__patch: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description respond sync: the run succeeded; the end node may set the status code and headers */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookResult"];
                };
            };
            /** @description respond async, or a sync run still going after its wait */
            202: {
                headers: {
                    /** @description The execution to poll (needs an API key) */
                    Location?: unknown;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookAccepted"];
                };
            };
            /** @description The body does not parse as its Content-Type says, or cannot be stored */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request fails the trigger's auth (token or signature); nothing ran */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description No workflow serves this path */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The trigger does not take this method (see the Allow header) */
            405: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The workflow is paused */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is larger than the hook's limit */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The body is not text in its charset */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description The request is invalid: which node, which field, why */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many calls to this path */
            429: {
                headers: {
                    /** @description Seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
            /** @description respond sync: the run failed */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HookRunFailed"];
                };
            };
            /** @description The hook's credential is missing: its owner has to fix it */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorDetail"];
                };
            };
        };
    };
}
