import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, NavLink, Outlet, useNavigate } from "react-router";
import { api } from "../api/client";
import { useMe } from "../api/queries";
import { ThemeToggle } from "../lists/ThemeToggle";
import "../lists/lists.css";

/** The signed-in frame: header, navigation, the account and sign-out. */
export function Shell() {
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [signingOut, setSigningOut] = useState(false);

  async function signOut() {
    setSigningOut(true);
    try {
      await api.POST("/auth/logout");
    } finally {
      queryClient.clear();
      setSigningOut(false);
      navigate("/sign-in", { replace: true });
    }
  }

  const signedIn = me.data && me.data.kind !== "anonymous";
  return (
    <div className="shell">
      <header className="shell-header">
        <Link to="/" className="brand" aria-label="ductwork home">
          ductwork
        </Link>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Workflows
          </NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/workflows/new">New workflow</NavLink>
        </nav>
        <div className="account">
          <ThemeToggle />
          {me.data ? <span aria-label="Signed in as">{me.data.name}</span> : null}
          {signedIn ? (
            <button type="button" onClick={signOut} disabled={signingOut}>
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <main className="shell-main">
        <Outlet />
      </main>
    </div>
  );
}
