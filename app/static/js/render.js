// Puts a display model into the page's own markup: the <template>s the server rendered from the
// same Jinja macro as its cards. Text goes in with textContent and attributes with
// setAttribute only, so a hostile name in a DNS answer or a database record stays text.

import { cardView, summaryView } from "./view.js";

function within(root, selector) {
  const found = [...root.querySelectorAll(selector)];
  return root.matches(selector) ? [root, ...found] : found;
}

export function fill(root, view) {
  for (const element of within(root, "[data-field]")) {
    element.textContent = view[element.dataset.field] ?? "";
  }
  for (const element of within(root, "[data-row]")) {
    element.hidden = view[element.dataset.row] == null;
  }
  for (const element of within(root, "[data-attr]")) {
    for (const pair of element.dataset.attr.split(" ")) {
      const [attribute, field] = pair.split(":");
      const value = view[field];
      if (value == null) element.removeAttribute(attribute);
      else element.setAttribute(attribute, value);
    }
  }
}

function drawMap(card, map) {
  if (!map) return;
  card.querySelector("[data-map]").setAttribute("viewBox", map.view_box);
  const accuracy = card.querySelector("[data-map-accuracy]");
  const pin = card.querySelector("[data-map-pin]");
  for (const shape of [accuracy, pin]) {
    shape.setAttribute("cx", map.x);
    shape.setAttribute("cy", map.y);
  }
  accuracy.setAttribute("rx", map.rx);
  accuracy.setAttribute("ry", map.ry);
  pin.setAttribute("r", map.pin);
}

export function errorHelp(code) {
  const help = document.getElementById("error-help").content;
  const entry = help.querySelector(`[data-code="${CSS.escape(code)}"]`) || help.querySelector('[data-code="INTERNAL_ERROR"]');
  return { title: entry.querySelector("h2").textContent, advice: entry.querySelector("p").textContent };
}

export function errorView(code, askedForMe) {
  const shown = askedForMe && code === "IP_ADDRESS_RESERVED" ? "MY_ADDRESS_RESERVED" : code;
  return { code: shown, ...errorHelp(shown) };
}

export function showError(view) {
  const panel = document.getElementById("error");
  fill(panel, view);
  panel.hidden = false;
  document.getElementById("answer").hidden = true;
}

export function showDocument(doc, askedForMe) {
  const summary = summaryView(doc, askedForMe);
  const answer = document.getElementById("answer");
  fill(answer.querySelector(".summary"), summary);
  fill(answer.querySelector(".source"), summary);

  const template = document.getElementById("card-template").content.firstElementChild;
  const cards = doc.results.map((result) => {
    const view = cardView(result, (code) => errorHelp(code).title);
    const card = template.cloneNode(true);
    fill(card, view);
    drawMap(card, view.map);
    return card;
  });
  document.getElementById("cards").replaceChildren(...cards);
  document.getElementById("raw-json").textContent = JSON.stringify(doc, null, 2);

  document.getElementById("error").hidden = true;
  answer.hidden = false;
  return summary;
}
