// Every subcommand registers itself on import; this file lists them in help order.
import './serve.ts';
