import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { api, errorMessage } from "../api/client";

/** Where to go after signing in: a path inside the app, never another site. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

type Credentials = { email: string; password: string } | { api_key: string };

export function SignIn() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();

  const login = useMutation({
    mutationFn: async (body: Credentials) => {
      const { data, error, response } = await api.POST("/auth/login", { body });
      if (data === undefined) {
        throw new Error(
          response.status === 429
            ? "Too many failed sign-ins: wait a moment and try again."
            : errorMessage(error, `Sign-in failed (HTTP ${response.status}).`),
        );
      }
      return data;
    },
    onSuccess: () => {
      queryClient.clear();
      navigate(safeNext(params.get("next")), { replace: true });
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const key = apiKey.trim();
    login.mutate(key ? { api_key: key } : { email: email.trim(), password });
  }

  const usingKey = apiKey.trim() !== "";
  return (
    <main className="sign-in">
      <form className="card" onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
        <h1 id="sign-in-title">Sign in to ductwork</h1>
        <label htmlFor="sign-in-email">Email</label>
        <input
          id="sign-in-email"
          name="email"
          type="email"
          autoComplete="username"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          required={!usingKey}
        />
        <label htmlFor="sign-in-password">Password</label>
        <input
          id="sign-in-password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required={!usingKey}
        />
        <p className="divider">or</p>
        <label htmlFor="sign-in-api-key">API key</label>
        <input
          id="sign-in-api-key"
          name="api_key"
          type="password"
          autoComplete="off"
          value={apiKey}
          onChange={(e) => setApiKey(e.target.value)}
          aria-describedby="sign-in-api-key-help"
        />
        <small id="sign-in-api-key-help">A key of your own (not the server's admin key).</small>
        {login.isError ? (
          <p role="alert" className="error">
            {login.error.message}
          </p>
        ) : null}
        <button type="submit" disabled={login.isPending}>
          {login.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
