// The site plot's frame: metres from degrees, and the plot's shared drawing state (its
// layers, scale and view box), which the plot, the handover marks and the link-map layer
// draw into. No module here draws; each view draws its own layer.

export const P = {
  frame: null,        // {lat0, lon0, mx, my}
  bounds: null,       // {x0, y0, x1, y1} in metres (y north)
  u: 5,               // size unit in metres (handover marks)
  px: 1,              // metres per screen pixel
  vb: null,           // the viewBox {x, y, w, h} (metres) and the plot's size in px {W, H}
  vehLayer: null,
  hoLayer: null,      // handover marks (handovers.js draws them)
  mapLayer: null,     // the link map's cells, above the roads (linkmap-layer.js)
  aheadLayer: null,   // weak stretches vehicles head into, under the vehicles (linkmap-layer.js)
  labelLayer: null,   // vehicle labels and their leader lines, above everything
  overlay: null,      // the scale bar
  vehEls: new Map(),
  statics: [],        // the site's labels: {el, kind, x, y, r, text}
  routes: [],         // the site's roads, [[x, y], ...] metres each
  staticBoxes: [],    // where they (and the site's icons) sit, px
  overlayBoxes: [],   // the scale bar's and the label note's boxes, px
  prefix: "",         // dropped from vehicle labels (SHORT_LABELS_FROM)
  built: false,
};

// Metres per degree at the origin on the WGS84 ellipsoid (meridional and prime-vertical
// radii), so the scale bar is true there; the sphere it replaced was 0.2-0.6 % off.
export function makeFrame(lat0, lon0) {
  const a = 6378137, e2 = 0.00669437999014, phi = lat0 * Math.PI / 180;
  const w = 1 - e2 * Math.sin(phi) ** 2, rad = Math.PI / 180;
  return { lat0, lon0, my: a * (1 - e2) / w ** 1.5 * rad,
           mx: a / Math.sqrt(w) * Math.cos(phi) * rad };
}
export const project = (lat, lon) => [(lon - P.frame.lon0) * P.frame.mx, -(lat - P.frame.lat0) * P.frame.my];

// What draws on the plot besides the plot itself (handover marks, the link map's layer and
// highlights), given by the render step (render.js): `built` after the plot was built anew
// (new, empty layers), `drawn` after its vehicles were drawn. The plot calls them without
// knowing who they are, so no view calls another view's renderer.
export const plotHooks = { built: [], drawn: [] };
