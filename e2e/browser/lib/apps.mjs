// The dev-server projects the suite serves: a small Vite app per workspace (its own
// title, a CSS file and a JS module that HMR updates, and a route `/go` that redirects
// to `http://localhost:<port>/next`, as an app's login redirect would), and a small
// Next.js app (App Router, a client component and a global CSS file).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const write = (dir, name, text) => {
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(join(dir, name), text);
};

/** `#title { color: rgb(r, g, b) }`: the colour the CSS edits change. */
export const titleCss = (rgb) => `#title { color: rgb(${rgb.join(', ')}); }\n`;

export function writeViteApp(dir, title) {
  write(
    dir,
    'index.html',
    `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,"></head>
  <body>
    <h1 id="title">${title}</h1>
    <p id="msg"></p>
    <script type="module" src="/main.js"></script>
  </body>
</html>
`,
  );
  write(dir, 'style.css', titleCss([1, 2, 3]));
  write(dir, 'message.js', `export const message = 'message v1';\n`);
  write(
    dir,
    'main.js',
    `import './style.css';
import { message } from './message.js';

const show = (text) => { document.querySelector('#msg').textContent = text; };
show(message);
// A JS edit is applied in place, without a page reload.
if (import.meta.hot) {
  import.meta.hot.accept('./message.js', (mod) => mod && show(mod.message));
}
`,
  );
  write(
    dir,
    'vite.config.mjs',
    `// Each workspace's own Vite cache; /go redirects to a loopback URL of this server.
export default {
  cacheDir: '.vite-cache',
  clearScreen: false,
  server: { strictPort: true },
  plugins: [{
    name: 'loopback-redirect',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.url !== '/go') return next();
        res.statusCode = 302;
        res.setHeader('Location', 'http://localhost:' + server.config.server.port + '/next');
        res.end();
      });
    },
  }],
};
`,
  );
}

/** The text of the Next.js page's heading, which the JS edit changes. */
export const nextPage = (text) => `'use client';

export default function Page() {
  return <h1 id="title">{${JSON.stringify(text)}}</h1>;
}
`;

export function writeNextApp(dir, title) {
  write(dir, 'next.config.mjs', `export default { devIndicators: false };\n`);
  write(dir, 'app/globals.css', titleCss([1, 2, 3]));
  write(
    dir,
    'app/layout.js',
    `import './globals.css';

export const metadata = { title: ${JSON.stringify(title)}, icons: { icon: 'data:,' } };

export default function RootLayout({ children }) {
  return <html lang="en"><body>{children}</body></html>;
}
`,
  );
  write(dir, 'app/page.js', nextPage(`${title} v1`));
}

export { write };
