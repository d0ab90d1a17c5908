//! Entry point: creates the App, Calls and Conferences, restores a saved session, renders the UI.
import { render } from "preact";
import { App } from "./app";
import { Calls } from "./call";
import { Conferences } from "./conference";
import { Root } from "./ui";
import "./styles.css";

const app = new App();
const calls = new Calls(app);
const confs = new Conferences(app);
// A handle for debugging and for the browser tests (getStats on the current call or conference).
(window as unknown as { iris: unknown }).iris = { app, calls, confs };
window.addEventListener("hashchange", () => app.route());
document.addEventListener("visibilitychange", () => {
  const c = app.conversations.get(app.active);
  if (c) app.markDisplayed(c);
  app.emit();
});
if (app.user) {
  app.start();
  app.route();
}
const root = document.getElementById("app");
if (root) render(<Root app={app} calls={calls} confs={confs} />, root);
// Time to interactive: the first render is done and handlers are attached.
performance.mark("iris-interactive");
