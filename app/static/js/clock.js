// Live local clocks: every <time data-clock datetime="…+01:00" data-zone="Europe/Paris"> ticks.
// The server's reading of "now" is the base and the page's own monotonic clock adds the time
// since, so a visitor whose computer clock is wrong still sees the right time there.

const formatters = new Map();

function formatterFor(zone) {
  if (!formatters.has(zone)) {
    let formatter = null;
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        weekday: "short",
        day: "numeric",
        month: "short",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
      });
    } catch (error) {
      formatter = null; // a zone this browser does not know: fall back to the fixed offset
    }
    formatters.set(zone, formatter);
  }
  return formatters.get(zone);
}

function offsetZone(offset) {
  // "+05:30" -> minutes east of UTC
  const match = /^UTC([+-])(\d{2}):(\d{2})$/.exec(offset || "");
  if (!match) return null;
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  return match[1] === "-" ? -minutes : minutes;
}

export function formatClock(instant, zone, offset) {
  let formatter = zone ? formatterFor(zone) : null;
  let moment = new Date(instant);
  if (!formatter) {
    const minutes = offsetZone(offset);
    if (minutes === null) return null;
    moment = new Date(instant + minutes * 60000);
    formatter = formatterFor("UTC");
  }
  const parts = Object.fromEntries(formatter.formatToParts(moment).map((part) => [part.type, part.value]));
  return `${parts.weekday} ${parts.day} ${parts.month}, ${parts.hour}:${parts.minute}:${parts.second}`;
}

const clocks = new Map(); // element -> {base instant, performance.now() at base}
let timer = null;

function tick() {
  const now = performance.now();
  for (const [element, clock] of clocks) {
    if (!element.isConnected) {
      clocks.delete(element);
      continue;
    }
    const text = formatClock(clock.instant + (now - clock.at), element.dataset.zone, element.dataset.offset);
    if (text && element.textContent !== text) element.textContent = text;
  }
  if (clocks.size === 0) {
    clearInterval(timer);
    timer = null;
  }
}

export function startClocks(root) {
  const at = performance.now();
  for (const element of root.querySelectorAll("[data-clock]")) {
    const instant = Date.parse(element.getAttribute("datetime") || "");
    if (Number.isNaN(instant)) continue;
    clocks.set(element, { instant, at });
  }
  if (clocks.size && timer === null) timer = setInterval(tick, 1000);
}
