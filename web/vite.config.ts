import { defineConfig } from "vite";

// `npm run dev` proxies the API and XMPP WebSocket to a running `iris serve` (IRIS_BACKEND).
const backend = process.env.IRIS_BACKEND ?? "https://localhost:8443";

// Preact through esbuild's automatic JSX runtime (no Babel preset needed).
export default defineConfig({
  server: {
    proxy: {
      "/api": { target: backend, secure: false, changeOrigin: true },
      "/xmpp-websocket": { target: backend, ws: true, secure: false, changeOrigin: true },
    },
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { target: "es2022", sourcemap: false, assetsInlineLimit: 0, reportCompressedSize: true },
  test: { environment: "jsdom" },
} as Parameters<typeof defineConfig>[0]);
