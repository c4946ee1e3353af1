#!/usr/bin/env node
/** The devstreams command line. Subcommands arrive with their issues; for now it prints help. */
const HELP = `devstreams — reach TCP ports on devices behind firewalls through a hub

Usage: devstreams <command> [options]

Commands:
  hub             run a hub
  device-proxy    run the device-side local proxy
  service-proxy   run the service-side local proxy
  registry        manage devices and connection strings
  demo            hub, both proxies and demo targets in one process
  bench           run the benchmark suite (same as npm run bench)

Run 'devstreams <command> --help' for a command's options.
`;
process.stdout.write(HELP);
