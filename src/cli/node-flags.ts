/**
 * Node.js flags the long-running commands (hub, device-proxy, service-proxy) are meant to run
 * with. The shipped systemd units and Dockerfile pass them, and the bench runs the tunnel with
 * them; `devstreams` started without them works the same, at a higher CPU cost per byte.
 *
 * Why `--initial-old-space-size=64`: a tunnel under load allocates a 64 KiB Buffer or two per
 * record, and some of their small heap objects live long enough to be promoted. With V8's
 * default sizing the old generation of these small (~10 MB) heaps is full again after about a
 * megabyte of promotions, so a process moving 200 MB/s ran one to two full mark-compact
 * collections a second, each a pause of milliseconds to tens of milliseconds. Starting the old
 * generation at 64 MB removed them (0-1 per run instead of 7-13 per proxy in 6 s of iperf3), and
 * in paired rounds on loopback cut CPU per GiB by about 40 % in each proxy and a third in the hub
 * while throughput doubled. The cost is memory that the heap may use before its first full
 * collection: up to about 50 MB more resident set per process under load, none when idle.
 *
 * It cannot be set from inside the process (V8 sizes the heap at start, and Node refuses the flag
 * in NODE_OPTIONS), and a `#!/usr/bin/env -S node ...` line would break on BusyBox's `env`,
 * common on devices; so it is passed on the command line by whatever starts the process.
 */
export const RECOMMENDED_NODE_FLAGS: readonly string[] = Object.freeze(['--initial-old-space-size=64']);
