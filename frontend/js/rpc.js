// JSON-RPC 2.0 client for the local backend: POST /rpc with the X-Radfeat-Token header.
import { readable, setConnection } from "./status.js";

export class RpcError extends Error {
  constructor(message, code = null, data = null) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

export const BUSY = -32003;
export const TOKEN_PLACEHOLDER = "{{RADFEAT_TOKEN}}";
let token = "";
let rpcId = 0;

/** The per-launch access token the server wrote into the page. */
export function readToken() {
  const meta = document.querySelector('meta[name="radfeat-token"]');
  token = meta ? meta.getAttribute("content") || "" : "";
  return token && token !== TOKEN_PLACEHOLDER ? token : "";
}

export async function rpc(method, params = {}, { keepalive = false } = {}) {
  let resp;
  try {
    resp = await fetch("/rpc", {
      method: "POST",
      keepalive,
      headers: { "Content-Type": "application/json", "X-Radfeat-Token": token },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    });
  } catch {
    setConnection("down", "Backend unreachable");
    throw new RpcError("Cannot reach the radfeat backend. Is it still running?");
  }
  if (resp.status === 401 || resp.status === 403) {
    throw new RpcError(
      "The backend refused this page (access token mismatch). Reopen it from “radfeat gui” or from the address printed by “radfeat serve”.",
    );
  }
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new RpcError(`The backend answered ${method} with HTTP ${resp.status} and no readable data.`);
  }
  if (body && body.error) {
    const err = body.error;
    throw new RpcError(readable(err.message), err.code ?? null, err.data ?? null);
  }
  setConnection("up");
  return body ? body.result : null;
}
