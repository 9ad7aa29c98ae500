import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Outlet, useLocation, useNavigate } from "react-router";
import { UNAUTHORIZED_EVENT } from "../api/client";

/** Sends the user to sign in whenever the API answers 401, then back where they were. */
export function Root() {
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();
  useEffect(() => {
    const onUnauthorized = () => {
      if (location.pathname === "/sign-in") return;
      queryClient.clear();
      const next = `${location.pathname}${location.search}${location.hash}`;
      navigate(`/sign-in?next=${encodeURIComponent(next)}`, { replace: true });
    };
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, [location, navigate, queryClient]);
  return <Outlet />;
}
