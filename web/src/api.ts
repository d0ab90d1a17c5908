//! The Iris REST API (/api/v1): login, token refresh (kept in sessionStorage), directory search
//! and ICE servers. Same origin only; errors carry the server's message.

export interface User {
  id: number;
  login: string;
  display_name: string;
  company: string;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  user: User;
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

const KEY = "iris.session";

interface Saved {
  access: string;
  refresh: string;
  expiresAt: number;
  user: User;
}

export class Api {
  private saved: Saved | null = null;
  private refreshing: Promise<string> | null = null;

  constructor() {
    try {
      const s = sessionStorage.getItem(KEY);
      if (s) this.saved = JSON.parse(s) as Saved;
    } catch {
      this.saved = null;
    }
  }

  get user(): User | null {
    return this.saved?.user ?? null;
  }

  private store(t: Tokens) {
    this.saved = { access: t.access_token, refresh: t.refresh_token, expiresAt: Date.now() + t.expires_in * 1000, user: t.user };
    sessionStorage.setItem(KEY, JSON.stringify(this.saved));
  }

  private async call<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${await this.token()}`;
    const r = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) {
      let message = `${r.status} ${r.statusText}`;
      try {
        const e = (await r.json()) as { message?: string };
        if (e.message) message = e.message;
      } catch {
        /* not JSON */
      }
      throw new ApiError(r.status, message);
    }
    return r.status === 204 ? (undefined as T) : ((await r.json()) as T);
  }

  async login(login: string, password: string): Promise<User> {
    const t = await this.call<Tokens>("POST", "/auth/login", { login, password }, false);
    this.store(t);
    return t.user;
  }

  /** A valid access token, refreshed shortly before it expires. */
  async token(): Promise<string> {
    const s = this.saved;
    if (!s) throw new ApiError(401, "not logged in");
    if (Date.now() < s.expiresAt - 30000) return s.access;
    if (!this.refreshing) {
      this.refreshing = this.call<Tokens>("POST", "/auth/refresh", { refresh_token: s.refresh }, false)
        .then((t) => {
          this.store(t);
          return t.access_token;
        })
        .catch((e) => {
          if (e instanceof ApiError && e.status === 401) this.forget();
          throw e;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  async logout() {
    try {
      await this.call("POST", "/auth/logout");
    } catch {
      /* the session ends locally anyway */
    }
    this.forget();
  }

  forget() {
    this.saved = null;
    sessionStorage.removeItem(KEY);
  }

  directory(q: string): Promise<User[]> {
    return this.call<User[]>("GET", `/directory?limit=20&q=${encodeURIComponent(q)}`);
  }

  iceServers(): Promise<RTCIceServer[]> {
    return this.call<RTCIceServer[]>("GET", "/ice-servers");
  }
}
