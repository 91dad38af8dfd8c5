// Every subcommand registers itself on import; this file lists them in help order.
import './sync.ts';
import './run.ts';
import './status.ts';
import './dlq.ts';
import './config-command.ts';
import './serve.ts';
import './demo.ts';
