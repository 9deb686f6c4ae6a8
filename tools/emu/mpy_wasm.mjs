// Run a MicroPython script under the 32-bit WebAssembly port (npm package),
// with host directories copied into its in-memory filesystem.
// Usage: node tools/emu/mpy_wasm.mjs script.py [dir ...]
// Each dir is copied to /hostN and added to sys.path; data files (.bin) are copied
// too, and GOLDEN names host_tests/golden_frames.bin inside the interpreter.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

function copyTree(FS, src, dst) {
  FS.mkdirTree(dst);
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name);
    const d = dst + "/" + name;
    const st = fs.statSync(s);
    if (st.isDirectory()) {
      if (name !== "__pycache__") copyTree(FS, s, d);
    } else if (name.endsWith(".py") || name.endsWith(".mpy") || name.endsWith(".bin")) {
      FS.writeFile(d, fs.readFileSync(s));
    }
  }
}

const [script, ...dirs] = process.argv.slice(2);
let failed = false;
const mp = await loadMicroPython({
  heapsize: 4 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => { console.error(line); },
});
const paths = [];
dirs.forEach((dir, i) => {
  const dst = "/host" + i;
  copyTree(mp.FS, dir, dst);
  paths.push(dst);
});
let golden = "";
dirs.forEach((dir, i) => {
  if (fs.existsSync(path.join(dir, "golden_frames.bin"))) golden = paths[i] + "/golden_frames.bin";
});
const prelude = "import sys\n" + paths.map((p) => `sys.path.insert(0, ${JSON.stringify(p)})\n`).join("") +
  `GOLDEN = ${JSON.stringify(golden)}\n`;
try {
  mp.runPython(prelude + fs.readFileSync(script, "utf8"));
} catch (err) {
  console.error(String(err));
  failed = true;
}
process.exit(failed ? 1 : 0);
