// Vitest setup: generous waits, because the suite also runs on a loaded 2-core CI.
// `findBy*`/`waitFor` poll a condition until it holds; their deadline is a safety net,
// not a timing claim (timings belong in bench/).
import { configure } from "@testing-library/dom";

configure({ asyncUtilTimeout: 15_000 });
