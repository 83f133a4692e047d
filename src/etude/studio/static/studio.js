// étude studio: the form, the takes, and the calls to /api.
const $ = (id) => document.getElementById(id);
let models = [];

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function detailText(body) {
  // FastAPI errors: {"detail": [{"loc": [...], "msg": ...}]} or {"detail": "..."}
  if (!body || !body.detail) return "the studio did not answer";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(detailText(body));
  return body;
}

function fillGenres() {
  const model = models.find((m) => m.id === $("model").value);
  $("genre").replaceChildren(...(model ? model.genres : []).map((g) => new Option(g, g)));
  // a form plan only for a model that remembers the piece; a disabled field is not sent
  const plan = Boolean(model && model.remembers_piece);
  $("form-field").hidden = !plan;
  $("form").disabled = $("section_bars").disabled = !plan;
}

function bindOutput(id, unit) {
  const show = () => { $(`${id}-out`).textContent = `${$(id).value}${unit}`; };
  $(id).addEventListener("input", show);
  show();
}

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function addTake(take) {
  // built from elements, not HTML text: names from a model never become markup
  const extras = [
    take.form ? `form ${take.form} (${take.section_bars} bars a section)` : "",
    take.key_hold ? `key hold ${take.key_hold}` : "",
    take.robot || "",
  ].filter(Boolean).map((x) => ` · ${x}`);
  const title = `${take.genre} · ${take.seconds} s · ${take.notes} notes${extras.join("")}`;
  const perform_ = element("button", { type: "button", textContent: "Perform" });
  const delete_ = element("button", { type: "button", textContent: "Delete" });
  const li = element(
    "li",
    { id: `take-${take.id}` },
    element("h3", { textContent: title }),
    element("img", { alt: `piano roll of the ${take.genre} piece`, src: take.urls.png }),
    element("audio", { controls: true, preload: "metadata", src: take.urls.wav }),
    element(
      "p",
      { className: "actions" },
      element("a", { href: take.urls.mid, download: "", textContent: "MIDI" }),
      element("a", { href: take.urls.wav, download: "", textContent: "WAV" }),
      perform_,
      delete_,
    ),
  );
  perform_.addEventListener("click", () => perform(take.id));
  delete_.addEventListener("click", () => remove(take.id, li));
  $("takes").prepend(li);
}

async function perform(id) {
  showError("");
  try {
    const r = await api("/api/perform", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ take: id }),
    });
    $("status").textContent = `performing (${r.seconds} s)`;
  } catch (e) { showError(e.message); }
}

async function remove(id, li) {
  try { await api(`/api/takes/${id}`, { method: "DELETE" }); li.remove(); } catch (e) { showError(e.message); }
}

async function generate(event) {
  event.preventDefault();
  showError("");
  const form = new FormData($("generate"));
  if (!$("primer").files.length) form.delete("primer");
  $("go").disabled = true;
  $("status").textContent = "generating…";
  const t0 = performance.now();
  try {
    const r = await api("/api/generate", { method: "POST", body: form });
    r.takes.forEach(addTake);
    $("status").textContent = `${r.takes.length} piece(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  } catch (e) {
    $("status").textContent = "";
    showError(e.message);
  } finally {
    $("go").disabled = false;
  }
}

async function start() {
  // The address `etude studio` printed may carry its token; the studio has kept it as a cookie
  // for this page's calls, so it leaves the address bar (and the history).
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);
  $("generate").addEventListener("submit", generate);
  $("model").addEventListener("change", fillGenres);
  $("stop").addEventListener("click", () => api("/api/stop", { method: "POST" }).catch((e) => showError(e.message)));
  try {
    // the form starts from the API's own defaults (the house sampling settings): none are written here
    const defaults = await api("/api/defaults");
    for (const [field, value] of Object.entries(defaults)) if (value !== "" && $(field)) $(field).value = value;
    bindOutput("length", " s");
    bindOutput("temperature", "");
    bindOutput("top_p", "");
    bindOutput("key_hold", "");
    models = await api("/api/models");
    $("model").replaceChildren(...models.map((m) => new Option(m.id, m.id, m.default, m.default)));
    fillGenres();
    (await api("/api/takes")).forEach(addTake);
  } catch (e) { showError(e.message); }
}

start();
