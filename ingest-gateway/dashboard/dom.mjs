// A small element builder. Text always goes in as text, never as HTML: lead names come from
// whoever posts them.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A table's body replaced by `rows`, and the note saying it is empty shown when it is.
export function fillTable(body, emptyNote, rows) {
  body.replaceChildren(...rows);
  emptyNote.hidden = rows.length > 0;
}

export function showError(node, error) {
  node.hidden = !error;
  node.textContent = error ? (error.message ?? String(error)) : '';
}

export function formatScore(score) {
  return score === null || score === undefined ? '—' : (Math.round(score * 10) / 10).toString();
}

export function formatTime(rfc3339) {
  return rfc3339 ? new Date(rfc3339).toISOString().slice(0, 19).replace('T', ' ') + ' UTC' : '—';
}
