// The script-tag build (dist/lazytensor.global.js, an IIFE): `<script src=".../lazytensor.global.js">`
// defines the global `lazytensor` with the package's whole API, and GeomLoss as `lazytensor.geomloss`.
export * from './index.js';
export * as geomloss from './geomloss/index.js';
