// REST: the fetch wrapper with the bearer token; a 401 is announced ("unauthorized"), and
// the page signs out (console.js).

import { hubUrl } from "./pair.js";
import { S, announce } from "./store.js";

class ApiError extends Error {
  constructor(status, detail, data = null) { super(detail); this.status = status; this.data = data; }
}
function detailOf(data) {
  if (data && typeof data === "object" && "detail" in data) {
    const d = data.detail;
    if (Array.isArray(d)) return d.map((x) => (x && x.msg) || JSON.stringify(x)).join("; ");
    if (d && typeof d === "object" && typeof d.message === "string") return d.message;
    return typeof d === "string" ? d : JSON.stringify(d);
  }
  return typeof data === "string" ? data.slice(0, 200) : "";
}
export async function api(method, path, body) {
  const opts = { method, cache: "no-store", headers: { Authorization: `Bearer ${S.token}` } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(hubUrl(path), opts);   // this hub, or the pair's leader (pair.js)
  } catch (err) {
    throw new ApiError(0, `hub unreachable (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (res.status === 401) {
    announce("unauthorized", `The hub rejected the token (401${detailOf(data) ? ": " + detailOf(data) : ""}). ` +
            "Sign in again.");
    throw new ApiError(401, "unauthorized");
  }
  if (!res.ok) {
    const why = detailOf(data) || res.statusText;
    throw new ApiError(res.status, res.status === 403 ? `not permitted: ${why}` : why, data);
  }
  return data;
}
