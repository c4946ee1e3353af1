// npm runs "prepare" on every install in a clone. With dev dependencies omitted (npm ci
// --omit=dev on a device) there is no TypeScript: say so and stop without failing the install.
// A device installs the packed tarball instead, which ships dist/ (built by "prepack").
import { createRequire } from 'node:module';
import { execSync } from 'node:child_process';

try {
  createRequire(import.meta.url).resolve('typescript');
} catch {
  console.error('devstreams: TypeScript is not installed (dev dependencies omitted), not building. On a device, install the packed tarball (npm pack; npm install -g devstreams-x.y.z.tgz), which ships dist/.');
  process.exit(0);
}
execSync('npm run build', { stdio: 'inherit' });
