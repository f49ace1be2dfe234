#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands';
import { ExpectedError } from '../errors';

/** `anomaly-detector <command>`: one program for the service and its tooling. */
async function main(argv: string[]): Promise<void> {
  // `anomaly-detector ... | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = new Command();
  program
    .name('anomaly-detector')
    .description('Anomaly detection for infrastructure metrics')
    .exitOverride()
    // Commander's own failures (a missing option, an unknown command) get the prefix of the
    // others: every expected failure is one line `anomaly-detector: ...`. Subcommands inherit this.
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'anomaly-detector: ')) });
  registerCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    // Expected failures (the catalogue in src/errors.ts) print one line; anything else is
    // a bug and keeps its stack.
    // A file system error on a path the user gave (a file that cannot be read or written)
    // is expected too: Node's message names the error, the call and the path.
    const err = e as NodeJS.ErrnoException;
    const expected =
      e instanceof ExpectedError || (typeof err.code === 'string' && typeof err.syscall === 'string' && typeof err.path === 'string');
    process.stderr.write(
      expected ? `anomaly-detector: ${err.message.split('\n')[0]}\n` : `anomaly-detector: ${err.stack ?? err.message}\n`,
    );
    process.exit(1);
  }
}

void main(process.argv);
