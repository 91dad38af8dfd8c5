export interface RequestObservation {
  route: string;
  method: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

export type ItemResult = 'created' | 'updated' | 'unchanged' | 'deleted';

const bucketsSeconds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Counters for `GET /metrics`, in Prometheus text format. Routes are the
 * router's patterns, never raw paths, so the number of series stays bounded.
 */
export class ServerMetrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, { counts: number[]; sum: number; count: number }>();
  readonly #items = new Map<ItemResult, number>();
  readonly #keys = new Map<string, { routeKey: string; series: Map<string, string> }>();
  #bytesIn = 0;
  #bytesOut = 0;

  observe(observation: RequestObservation): void {
    // The label strings are built once per series, not once per request.
    let byRoute = this.#keys.get(observation.route);
    if (!byRoute) {
      byRoute = { routeKey: `route="${label(observation.route)}"`, series: new Map() };
      this.#keys.set(observation.route, byRoute);
    }
    const seriesId = `${observation.method} ${observation.status}`;
    let key = byRoute.series.get(seriesId);
    if (key === undefined) {
      key = `${byRoute.routeKey},method="${observation.method}",status="${observation.status}"`;
      byRoute.series.set(seriesId, key);
    }
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    this.#bytesIn += observation.bytesIn;
    this.#bytesOut += observation.bytesOut;
    const routeKey = byRoute.routeKey;
    let histogram = this.#latency.get(routeKey);
    if (!histogram) {
      histogram = { counts: bucketsSeconds.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(routeKey, histogram);
    }
    const seconds = observation.durationMs / 1000;
    const counts = histogram.counts;
    for (let index = 0; index < bucketsSeconds.length; index += 1) {
      if (seconds <= bucketsSeconds[index]!) counts[index]! += 1;
    }
    histogram.sum += seconds;
    histogram.count += 1;
  }

  countItem(result: ItemResult): void {
    this.#items.set(result, (this.#items.get(result) ?? 0) + 1);
  }

  /** The exposition text; `storedItems` is read from storage at scrape time. */
  render(storedItems: number): string {
    const lines: string[] = [
      '# HELP upsync_requests_total HTTP requests answered, by route, method and status.',
      '# TYPE upsync_requests_total counter',
    ];
    for (const [labels, value] of this.#requests)
      lines.push(`upsync_requests_total{${labels}} ${value}`);
    lines.push(
      '# HELP upsync_request_bytes_total Request body bytes received.',
      '# TYPE upsync_request_bytes_total counter',
      `upsync_request_bytes_total ${this.#bytesIn}`,
      '# HELP upsync_response_bytes_total Response body bytes sent.',
      '# TYPE upsync_response_bytes_total counter',
      `upsync_response_bytes_total ${this.#bytesOut}`,
      '# HELP upsync_item_writes_total Item writes by result.',
      '# TYPE upsync_item_writes_total counter',
    );
    for (const [result, value] of this.#items) {
      lines.push(`upsync_item_writes_total{result="${result}"} ${value}`);
    }
    lines.push(
      '# HELP upsync_items Items stored, across projects.',
      '# TYPE upsync_items gauge',
      `upsync_items ${storedItems}`,
      '# HELP upsync_request_duration_seconds Time from request to answer.',
      '# TYPE upsync_request_duration_seconds histogram',
    );
    for (const [labels, histogram] of this.#latency) {
      bucketsSeconds.forEach((bound, index) => {
        lines.push(
          `upsync_request_duration_seconds_bucket{${labels},le="${bound}"} ${histogram.counts[index]}`,
        );
      });
      lines.push(
        `upsync_request_duration_seconds_bucket{${labels},le="+Inf"} ${histogram.count}`,
        `upsync_request_duration_seconds_sum{${labels}} ${histogram.sum}`,
        `upsync_request_duration_seconds_count{${labels}} ${histogram.count}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}
