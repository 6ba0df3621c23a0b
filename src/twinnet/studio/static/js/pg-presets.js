// Book experiments: a menu of playground states (from the server's presets table) and a
// banner with the experiment's claim, what to watch, what the playground cannot express,
// and buttons for the other side of the claim ("same depth with ReLU"). A preset is only
// a state: choosing one goes through the same apply() as any setting, so the URL holds it.

const same = (a, b) => Object.keys(b).every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));

export class PresetsPanel {
  constructor(menuRoot, banner, presets, apply) {
    this.presets = presets; this.banner = banner; this.apply = apply;
    this.current = null;
    const label = document.createElement("label"); label.textContent = "Book experiments"; label.htmlFor = "preset";
    const select = this.select = document.createElement("select"); select.id = "preset";
    select.append(new Option("choose one…", ""));
    for (const p of presets) select.append(new Option(p.title, p.id));
    select.addEventListener("change", () => this.choose(select.value));
    const hint = document.createElement("p"); hint.className = "hint";
    hint.textContent = "Each loads the settings that show one claim of the book live.";
    menuRoot.append(label, select, hint);
  }

  // a state opened from a link: show its experiment if it is one of the presets' states
  recognise(state) {
    const p = this.presets.find((p) => [p.settings, ...p.then.map((t) => t.settings)].some((s) => same(state, s)));
    if (p) this.show(p);
  }

  choose(id) {
    const p = this.presets.find((p) => p.id === id);
    if (!p) return this.show(null);
    this.show(p);
    this.apply(structuredClone(p.settings));
  }

  show(p) {
    this.current = p; this.select.value = p ? p.id : "";
    const b = this.banner; b.innerHTML = ""; b.hidden = !p;
    if (!p) return;
    const head = document.createElement("div"); head.className = "preset-head";
    const title = document.createElement("b"); title.textContent = `Book experiment: ${p.title}`;
    const cmd = document.createElement("code"); cmd.textContent = p.command;
    const close = document.createElement("button"); close.type = "button"; close.className = "tiny";
    close.textContent = "×"; close.title = "hide"; close.onclick = () => this.show(null);
    head.append(title, cmd, close);
    const claim = document.createElement("p"); claim.id = "preset-claim"; claim.className = "preset-claim";
    claim.textContent = `Claim: ${p.claim}`;
    const watch = document.createElement("p"); watch.id = "preset-watch"; watch.textContent = `Watch: ${p.watch}`;
    b.append(head, claim, watch);
    if (p.missing) {
      const m = document.createElement("p"); m.className = "muted"; m.textContent = `Not in the playground: ${p.missing}`;
      b.append(m);
    }
    const row = document.createElement("div"); row.className = "preset-then";
    const again = this.button(`${p.title} (as loaded)`, p.settings, "preset-base");
    row.append(again, ...p.then.map((t, i) => this.button(`then: ${t.label}`, t.settings, `preset-then-${i}`)));
    b.append(row);
  }

  button(text, settings, id) {
    const btn = document.createElement("button"); btn.type = "button"; btn.textContent = text; btn.id = id;
    btn.onclick = () => this.apply(structuredClone(settings));
    return btn;
  }
}
