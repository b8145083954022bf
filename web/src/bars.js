// Live blendshape bars, one row per name in the order the results list them (kaocap.BLENDSHAPES).

export class Bars {
  constructor(root) {
    this.root = root;
    this.rows = new Map();
  }

  update(values, missing = []) {
    for (const [name, value] of Object.entries(values)) {
      const row = this.rows.get(name) ?? this.add(name);
      if (row.value === value) continue;
      row.value = value;
      row.fill.style.transform = `scaleX(${Math.min(Math.max(value, 0), 1)})`;
      row.text.textContent = value.toFixed(2);
    }
    for (const [name, row] of this.rows) row.element.classList.toggle('missing', missing.includes(name));
  }

  add(name) {
    const element = document.createElement('div');
    element.className = 'bar';
    const label = document.createElement('span');
    label.className = 'name';
    label.textContent = name;
    label.title = name;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    track.append(fill);
    const text = document.createElement('span');
    text.className = 'value';
    element.append(label, track, text);
    this.root.append(element);
    const row = { element, fill, text, value: null };
    this.rows.set(name, row);
    return row;
  }
}
