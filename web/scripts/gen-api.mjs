// Generate src/api/schema.d.ts from the API's OpenAPI document (scripts/openapi_dump.py,
// no server needed). With --check, generate into memory and fail when the committed
// file differs (CI runs this through tests/test_ts_client.py and scripts/test).
//
// Python: $DUCTWORK_PYTHON, else the repository's .venv, else python3.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(web, "..");
const target = join(web, "src", "api", "schema.d.ts");
const check = process.argv.includes("--check");

function python() {
  if (process.env.DUCTWORK_PYTHON) return process.env.DUCTWORK_PYTHON;
  const venv = join(repo, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

const scratch = mkdtempSync(join(tmpdir(), "ductwork-gen-api-"));
let generated;
try {
  const documentPath = join(scratch, "openapi.json");
  execFileSync(python(), [join(repo, "scripts", "openapi_dump.py"), documentPath], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const document = JSON.parse(readFileSync(documentPath, "utf8"));
  const ast = await openapiTS(document);
  generated =
    "// Generated from ductwork's OpenAPI document by `npm run gen:api`: do not edit.\n" +
    "// `npm run check:api` (run by scripts/test) fails when this file is out of date.\n\n" +
    astToString(ast);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (check) {
  const committed = existsSync(target) ? readFileSync(target, "utf8") : "";
  if (committed !== generated) {
    console.error(
      "web/src/api/schema.d.ts does not match the API's OpenAPI document: " +
        "run `npm --prefix web run gen:api` and commit the result.",
    );
    process.exit(1);
  }
  console.log("web/src/api/schema.d.ts matches the API's OpenAPI document.");
} else {
  writeFileSync(target, generated);
  console.log(`wrote ${target}`);
}
