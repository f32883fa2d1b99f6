// The daemon's web console, started once: asked for on the command line, by `vpl011 web-url`, or remembered in
// <run>/web.json from an earlier start (./web-access.ts).
import { WebAccess, type WebListen } from './web-access.js';
import { WebConsole, type ConsoleHub } from './web-server.js';

export class WebService {
  private web: WebConsole | undefined;

  constructor(
    private readonly runDir: string,
    private readonly hub: ConsoleHub,
    private readonly say: (line: string) => void,
  ) {}

  /** Where it listens; undefined when it is not running. */
  get address(): { host: string; port: number } | undefined {
    return this.web?.address;
  }

  /** Where an earlier start listened (web.json), if anywhere. */
  remembered(): WebListen | undefined {
    return new WebAccess(this.runDir).listen;
  }

  /** Start the web console (once); remembers where, so a restarted daemon serves it again. */
  async start(listen: WebListen): Promise<WebConsole> {
    if (this.web) return this.web;
    const access = new WebAccess(this.runDir);
    const web = new WebConsole(this.hub, access, this.say);
    await web.listen(listen);
    this.web = web;
    access.listen = { ...listen, port: listen.port === 0 ? web.address!.port : listen.port };
    this.say(`web console on http://${web.address!.host}:${web.address!.port}/ (vpl011 web-url prints a URL with its token)`);
    return web;
  }

  close(): void {
    this.web?.close();
  }
}
