// Runs every micro benchmark in turn; each merges its result into bench/results/micro.json.
// Run: npm run bench:micro   (BENCH_QUICK=1 for small counts)
import { runDebounce } from './debounce.ts';
import { runPushCost } from './push-cost.ts';
import { runSqliteOutbox } from './sqlite-outbox.ts';

console.log('== debounce: one key written 20/s for 60 s under run (ManualClock) ==');
await runDebounce();
console.log('\n== sqlite-outbox: durable appends in bursts (group commit) ==');
await runSqliteOutbox();
console.log('\n== push-cost: 1,000,000 Engine.push() over 10,000 keys ==');
await runPushCost();
