// Report modules compiled into `npm run bench`: each import registers its section, data collector
// and goal rows (report/registry.ts). Benches of the mux, hub and crypto add one import line here,
// e.g. `import './mux-micro.js';` whose module calls registerModule({ id: 'mux', ... }).
import './micro-transport.js';
import './module-mux.js';
import './module-hub.js';
import './module-crypto.js';
import './standalone/fleet-bench.js';
import './trace.js';
