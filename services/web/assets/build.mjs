// Builds what the pages load from this server, from the pinned npm packages (package-lock.json):
//   services/web/static/rectrack.css         GOV.UK Frontend with our settings (rectrack.scss)
//   services/web/static/govuk/assets/images  GOV.UK Frontend's images (favicon)
//   services/web/static/swagger-ui/          Swagger UI for the API page, from swagger-ui-dist
// Run by `make assets` (part of `make install` and `make install-dev`): `npm ci && npm run build`.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as sass from "sass";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const modules = join(root, "node_modules");
const out = join(here, "..", "static");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const css = sass.compile(join(here, "rectrack.scss"), {
  style: "compressed",
  importers: [new sass.NodePackageImporter(root)],
  // GOV.UK Frontend still carries deprecation warnings of its own; they are not ours to fix.
  quietDeps: true,
  silenceDeprecations: ["import"],
});
writeFileSync(join(out, "rectrack.css"), css.css);

const images = join(out, "govuk", "assets", "images");
mkdirSync(images, { recursive: true });
for (const name of ["favicon.ico", "favicon.svg"]) {
  cpSync(join(modules, "govuk-frontend", "dist", "govuk", "assets", "images", name), join(images, name));
}

const swagger = join(out, "swagger-ui");
mkdirSync(swagger, { recursive: true });
for (const name of ["swagger-ui.css", "swagger-ui-bundle.js", "LICENSE"]) {
  cpSync(join(modules, "swagger-ui-dist", name), join(swagger, name));
}
for (const name of ["api-docs.js", "api-docs.css"]) {
  cpSync(join(here, name), join(swagger, name));
}

console.log(`assets built in ${out}`);
