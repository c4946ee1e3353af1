#!/usr/bin/env node
/**
 * The devstreams command line. Each subcommand lives in `commands/<name>.ts` and exports a
 * function returning a commander `Command`; add new ones to COMMANDS below.
 */
import { Command } from 'commander';
import { hubCommand } from './commands/hub.js';
import { registryCommand } from './commands/registry.js';
import { deviceProxyCommand } from './commands/device-proxy.js';
import { serviceProxyCommand } from './commands/service-proxy.js';
import { demoCommand } from './commands/demo.js';
import { fail } from './fail.js';

/** Subcommand factories, in help order. Others (device-proxy, service-proxy, demo, bench) plug in here. */
const COMMANDS: (() => Command)[] = [hubCommand, registryCommand, deviceProxyCommand, serviceProxyCommand, demoCommand];

export function buildProgram(): Command {
  const program = new Command('devstreams')
    .description('reach TCP ports on devices behind firewalls through a hub both sides dial out to')
    .showHelpAfterError('(run with --help for usage)');
  for (const make of COMMANDS) program.addCommand(make());
  program.addHelpText('after', `
Examples:
  $ devstreams hub --listen 127.0.0.1:8080 --data ./hubdata
  $ devstreams registry add sensor-17 --data ./hubdata
  $ devstreams registry service-string --data ./hubdata`);
  return program;
}

buildProgram().parseAsync(process.argv).catch(fail);
