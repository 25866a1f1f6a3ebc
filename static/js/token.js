// The API token, for a kfn that has one (http.token / KFN_HTTP_TOKEN).
//
// Give it to the dashboard once in the URL fragment: http://host:8080/#token=SECRET
// (a fragment never reaches the server or its logs). It is kept in this tab's
// sessionStorage, the fragment is removed from the address bar, and the publish form
// sends it as `Authorization: Bearer`. It can also be typed into the form's token
// field. Under `http.auth: all` the server also guards reads; EventSource cannot send
// headers, so the token is set as a same-site cookie, which kfn accepts for reads
// only (never for publishing, so another site cannot publish through this browser).

const KEY = "kfn-token";

export function adoptFragmentToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = params.get("token");
  if (fromUrl) {
    setToken(fromUrl);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  } else if (getToken()) {
    setCookie(getToken());
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled: the form field still works for this page */
  }
  setCookie(token);
}

function setCookie(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = token
    ? `${KEY}=${encodeURIComponent(token)}; Path=/; SameSite=Strict${secure}`
    : `${KEY}=; Path=/; Max-Age=0; SameSite=Strict`;
}

/** Headers that carry the token, if there is one. */
export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}
