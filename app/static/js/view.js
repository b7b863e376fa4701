// The display model: a result document turned into the words and numbers the page shows.
// Mirrors the display-model half of app/http/page.py line for line, so a result fetched here
// reads exactly like one rendered on the server (the browser tests compare the two).

const MAP_SCALE = 10;
const MAP_MIN_HALF_WIDTH = 12.0;
const MAP_MAX_HALF_WIDTH = 180.0;
const KM_PER_DEGREE = 111.32;

const TIMEZONE_SOURCES = {
  mmdb: "from the City database",
  tz_world: "from the time-zone map (the database has none for this place)",
};

export function summaryView(doc, askedForMe) {
  const count = doc.results.length;
  let heading;
  if (doc.kind === "domain") {
    heading = `${doc.query}: ${count} address${count === 1 ? "" : "es"}`;
  } else if (askedForMe) {
    heading = "Your address";
  } else {
    heading = doc.query;
  }
  const withheld = doc.addresses_withheld || 0;
  const database = doc.database || {};
  const asnDatabase = doc.asn_database || {};
  return {
    heading,
    canonical_name: doc.kind === "domain" ? doc.canonical_name ?? null : null,
    withheld: withheld
      ? `${withheld} private or reserved address${withheld === 1 ? " is" : "es are"} not shown.`
      : null,
    database: databaseLine(database),
    attribution: database.attribution ?? null,
    asn_database: databaseLine(asnDatabase),
    asn_attribution:
      asnDatabase.attribution !== database.attribution ? asnDatabase.attribution ?? null : null,
  };
}

function databaseLine(database) {
  if (!database || !database.type) return null;
  const parts = [database.type];
  if (database.build_date) parts.push(`built ${String(database.build_date).slice(0, 10)}`);
  if (database.source) parts.push(`source: ${database.source}`);
  return parts.join(", ");
}

export function flagEmoji(isoCode) {
  if (!isoCode || !/^[A-Za-z]{2}$/.test(isoCode)) return null;
  return String.fromCodePoint(
    ...isoCode.toUpperCase().split("").map((letter) => 0x1f1e6 + letter.charCodeAt(0) - 65),
  );
}

function named(entry) {
  if (!entry || !entry.name) return null;
  return entry.iso_code ? `${entry.name} (${entry.iso_code})` : entry.name;
}

// "AS15169, Google LLC": who announces the address's network.
export function ownerText(asn) {
  if (!asn || (asn.number == null && !asn.organization)) return null;
  return [asn.number != null ? `AS${asn.number}` : null, asn.organization]
    .filter((part) => part)
    .join(", ");
}

export function cardView(result, errorTitle) {
  if (result.error) {
    return { ip: result.ip, error: errorTitle(result.error.code) };
  }
  const city = (result.city || {}).name ?? null;
  const regions = (result.subdivisions || []).filter((sub) => sub.name).map((sub) => sub.name);
  const country = result.country || {};
  const continent = result.continent || {};
  const registered = result.registered_country || {};
  const location = result.location || {};
  const timezone = result.timezone || {};
  const owner = ownerText(result.asn);
  const placeParts = [city, ...regions.slice(0, 1), country.name].filter((part) => part);
  const worldMap = mapView(location);
  return {
    ip: result.ip,
    error: null,
    title: placeParts.length ? placeParts.join(", ") : "Location unknown",
    flag: flagEmoji(country.iso_code),
    flag_label: country.name ? `Flag of ${country.name}` : null,
    network: result.network ?? null,
    city,
    region: regions.join(", ") || null,
    country: named(country),
    eu: country.is_in_european_union ? "Member of the European Union" : null,
    continent: continent.name ?? null,
    registered_country:
      registered.iso_code && registered.iso_code !== country.iso_code ? named(registered) : null,
    postal: (result.postal || {}).code ?? null,
    asn: owner,
    asn_network: owner && result.asn.network ? `network ${result.asn.network}` : null,
    coordinates: coordinatesText(location),
    timezone: timezoneText(timezone),
    timezone_note: timezoneNote(timezone),
    utc_offset: timezone.utc_offset ? `UTC${timezone.utc_offset}` : null,
    local_time: clockText(timezone.local_time),
    local_time_iso: timezone.local_time ?? null,
    timezone_name: timezone.name ?? null,
    map: worldMap,
    map_label: worldMap ? worldMap.label : null,
    osm_url: osmUrl(location),
    overlay: overlayText(result.overlay),
  };
}

export function overlayText(overlay) {
  return overlay ? `${overlay.file} (${overlay.prefix})` : null;
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function coordinatesText(location) {
  const { latitude, longitude } = location;
  if (!isNumber(latitude) || !isNumber(longitude)) return null;
  const text =
    `${Math.abs(latitude).toFixed(4)}° ${latitude >= 0 ? "N" : "S"}, ` +
    `${Math.abs(longitude).toFixed(4)}° ${longitude >= 0 ? "E" : "W"}`;
  const radius = location.accuracy_radius;
  return radius != null ? `${text} (within ${radius} km)` : text;
}

function timezoneText(timezone) {
  if (!timezone.name) return null;
  const source = TIMEZONE_SOURCES[timezone.source];
  return source ? `${timezone.name}, ${source}` : timezone.name;
}

function timezoneNote(timezone) {
  if (timezone.degraded) {
    return "The time-zone map is not answering right now, so the time zone is unknown. Try again shortly.";
  }
  if (timezone.at_sea) return "This point is at sea: the time is nautical time for this longitude.";
  if (timezone.confidence === "approximate") {
    return "Approximate: the database only knows the country, so this is the time at its centre.";
  }
  return null;
}

// "Tue 21 Nov, 14:03:22", the wall-clock time written in the ISO text itself (no conversion).
export function clockText(localTime) {
  if (!localTime) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(localTime);
  if (!match) return null;
  const [, year, month, day, hour, minute, second] = match;
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  const weekday = date.toLocaleDateString("en-US", { weekday: "short", timeZone: "UTC" });
  const monthName = date.toLocaleDateString("en-US", { month: "short", timeZone: "UTC" });
  return `${weekday} ${Number(day)} ${monthName}, ${hour}:${minute}:${second}`;
}

export function mapView(location) {
  const { latitude, longitude } = location;
  if (!isNumber(latitude) || !isNumber(longitude)) return null;
  const radiusKm = location.accuracy_radius || 0;
  const radiusY = radiusKm / KM_PER_DEGREE;
  const radiusX = Math.min(radiusY / Math.max(Math.cos((latitude * Math.PI) / 180), 0.01), 180.0);
  const halfWidth = Math.min(
    Math.max(MAP_MIN_HALF_WIDTH, radiusX * 2.5, radiusY * 5),
    MAP_MAX_HALF_WIDTH,
  );
  const halfHeight = halfWidth / 2;
  const centerY = Math.min(Math.max(latitude, -90 + halfHeight), 90 - halfHeight);
  return {
    view_box: [
      (longitude - halfWidth) * MAP_SCALE,
      (-centerY - halfHeight) * MAP_SCALE,
      2 * halfWidth * MAP_SCALE,
      2 * halfHeight * MAP_SCALE,
    ]
      .map(unit)
      .join(" "),
    x: unit(longitude * MAP_SCALE),
    y: unit(-latitude * MAP_SCALE),
    rx: unit(radiusX * MAP_SCALE),
    ry: unit(radiusY * MAP_SCALE),
    pin: unit((halfWidth * MAP_SCALE) / 40),
    label: `Map around ${coordinatesText(location)}`,
  };
}

function unit(value) {
  return String(Number(value.toFixed(2)));
}

function osmUrl(location) {
  const { latitude, longitude } = location;
  if (!isNumber(latitude) || !isNumber(longitude)) return null;
  const radius = location.accuracy_radius || 10;
  const zoom = Math.max(3, Math.min(16, Math.round(14 - Math.log2(Math.max(radius, 1) / 2))));
  const lat = latitude.toFixed(5);
  const lon = longitude.toFixed(5);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=${zoom}/${lat}/${lon}`;
}
