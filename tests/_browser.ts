/**
 * A headless Chromium driven over the DevTools protocol, for the tests that look at a page as a
 * browser shows it. Nothing is added to the page: the tests evaluate their checks from outside.
 * Debian's `chromium` (or $CHROMIUM); where it is missing those tests are skipped, and say so.
 */

export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

export const HAS_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/** The flags that keep it headless, offline and away from any profile of the machine. */
export function chromiumFlags(profile: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
  ];
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
  result?: Record<string, unknown>;
  error?: { message: string };
};

export class Browser implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #profile: string;
  readonly #socket: WebSocket;
  readonly #stderr: Promise<void>;
  readonly #closed: Promise<void>;
  #nextId = 1;
  readonly #waiting = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();
  readonly #listeners: ((message: Message) => void)[] = [];

  private constructor(
    child: Deno.ChildProcess,
    profile: string,
    socket: WebSocket,
    stderr: Promise<void>,
  ) {
    this.#child = child;
    this.#profile = profile;
    this.#socket = socket;
    this.#stderr = stderr;
    const closed = Promise.withResolvers<void>();
    this.#closed = closed.promise;
    socket.onclose = () => closed.resolve();
    socket.onmessage = (event) => {
      const message: Message = JSON.parse(String(event.data));
      if (message.id !== undefined) {
        const waiter = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        if (message.error) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result ?? {});
      } else {
        for (const listener of this.#listeners) listener(message);
      }
    };
  }

  static async launch(windowSize = "1280,2400"): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "img2-chromium-" });
    const child = new Deno.Command(CHROMIUM, {
      args: [
        ...chromiumFlags(profile),
        `--window-size=${windowSize}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let endpoint: string | undefined;
    while (endpoint === undefined) {
      const { value, done } = await reader.read();
      if (done) {
        await child.status;
        throw new Error(`chromium ended before it listened: ${text}`);
      }
      text += value;
      endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1];
    }
    // Its log goes on; read it so that it never waits on a full pipe.
    const stderr = (async () => {
      while (!(await reader.read()).done);
    })();
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    return new Browser(child, profile, socket, stderr);
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const waiter = Promise.withResolvers<Record<string, unknown>>();
    this.#waiting.set(id, waiter);
    this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    return waiter.promise;
  }

  /** Opens `url` in a new tab and waits for its load event; dialogs and console calls are kept. */
  async open(url: string): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, String(sessionId));
    this.#listeners.push((message) => {
      if (message.sessionId === page.sessionId) page.seen.push(message);
    });
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    const loaded = page.next("Page.loadEventFired");
    await page.send("Page.navigate", { url });
    await loaded;
    return page;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#socket.close();
    await this.#closed;
    this.#child.kill("SIGTERM");
    await this.#child.status;
    await this.#stderr;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

export class Page {
  readonly #browser: Browser;
  readonly sessionId: string;
  /** Every event of the page: dialogs, console calls, exceptions. */
  readonly seen: Message[] = [];

  constructor(browser: Browser, sessionId: string) {
    this.#browser = browser;
    this.sessionId = sessionId;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#browser.send(method, params, this.sessionId);
  }

  /** Settles at the next event named `method`. */
  async next(method: string): Promise<void> {
    const start = this.seen.length;
    while (!this.seen.slice(start).some((message) => message.method === method)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** The value of `expression` evaluated in the page (a promise is awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (answer.exceptionDetails) throw new Error(JSON.stringify(answer.exceptionDetails));
    return (answer.result as { value: T }).value;
  }

  /** Events that show that the page's own script ran: dialogs, console calls, exceptions. */
  scriptTraces(): Message[] {
    return this.seen.filter((message) =>
      ["Page.javascriptDialogOpening", "Runtime.consoleAPICalled", "Runtime.exceptionThrown"]
        .includes(message.method ?? "")
    );
  }
}
