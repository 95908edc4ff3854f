// A QR code encoder for the browser (ISO/IEC 18004): byte, alphanumeric and numeric
// segments, error correction M, the smallest version 1-40 that fits, so the wallet draws
// a presentation's QR code (and a credential's, as its issuer drew it) offline. Follows the structure of Project Nayuki's QR Code generator (MIT licence);
// the error-correction tables are those of ISO/IEC 18004 table 9 for level M.
"use strict";

(function () {
  const ECC_PER_BLOCK = [10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
  const BLOCKS = [1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];
  const FORMAT_M = 0;

  function rawModules(ver) {
    let result = (16 * ver + 128) * ver + 64;
    if (ver >= 2) {
      const align = Math.floor(ver / 7) + 2;
      result -= (25 * align - 10) * align - 55;
      if (ver >= 7) result -= 36;
    }
    return result;
  }
  function dataCodewords(ver) {
    return Math.floor(rawModules(ver) / 8) - ECC_PER_BLOCK[ver - 1] * BLOCKS[ver - 1];
  }
  function gfMul(x, y) {
    let z = 0;
    for (let i = 7; i >= 0; i--) { z = (z << 1) ^ ((z >>> 7) * 0x11d); z ^= ((y >>> i) & 1) * x; }
    return z;
  }
  function rsDivisor(degree) {
    const result = new Array(degree - 1).fill(0).concat([1]);
    let root = 1;
    for (let i = 0; i < degree; i++) {
      for (let j = 0; j < result.length; j++) {
        result[j] = gfMul(result[j], root);
        if (j + 1 < result.length) result[j] ^= result[j + 1];
      }
      root = gfMul(root, 0x02);
    }
    return result;
  }
  function rsRemainder(data, divisor) {
    const result = divisor.map(() => 0);
    for (const b of data) {
      const factor = b ^ result.shift();
      result.push(0);
      divisor.forEach((coef, i) => { result[i] ^= gfMul(coef, factor); });
    }
    return result;
  }
  function bit(x, i) { return ((x >>> i) & 1) !== 0; }

  // Segments as the issuers' QR codes have them: an HC1: text in alphanumeric mode, a
  // shc:/ text as a byte segment then a numeric one, anything else in byte mode.
  const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  function segments(text) {
    if (/^shc:\/\d+$/.test(text)) return [{ mode: "byte", data: "shc:/" }, { mode: "numeric", data: text.slice(5) }];
    if (/^[0-9A-Z $%*+\-./:]+$/.test(text)) return [{ mode: "alnum", data: text }];
    return [{ mode: "byte", data: text }];
  }
  const MODE = { numeric: [1, [10, 12, 14]], alnum: [2, [9, 11, 13]], byte: [4, [8, 16, 16]] };
  function segmentBits(segment, ver, put) {
    const [indicator, counts] = MODE[segment.mode];
    const countBits = counts[ver <= 9 ? 0 : ver <= 26 ? 1 : 2];
    if (segment.mode === "byte") {
      const bytes = new TextEncoder().encode(segment.data);
      put(indicator, 4); put(bytes.length, countBits); bytes.forEach((b) => put(b, 8));
    } else if (segment.mode === "alnum") {
      const d = segment.data;
      put(indicator, 4); put(d.length, countBits);
      for (let i = 0; i + 1 < d.length; i += 2) put(ALNUM.indexOf(d[i]) * 45 + ALNUM.indexOf(d[i + 1]), 11);
      if (d.length % 2) put(ALNUM.indexOf(d[d.length - 1]), 6);
    } else {
      const d = segment.data;
      put(indicator, 4); put(d.length, countBits);
      for (let i = 0; i < d.length; i += 3) { const group = d.slice(i, i + 3); put(Number(group), group.length * 3 + 1); }
    }
  }

  function encode(text) {
    const parts = segments(text);
    let ver = 1, bits = [];
    for (; ver <= 40; ver++) {
      bits = [];
      const put = (value, length) => { for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
      parts.forEach((segment) => segmentBits(segment, ver, put));
      if (bits.length <= dataCodewords(ver) * 8) break;
    }
    if (ver > 40) throw new Error("the text does not fit one QR code");
    const put = (value, length) => { for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
    const capacity = dataCodewords(ver) * 8;
    put(0, Math.min(4, capacity - bits.length));
    put(0, (8 - (bits.length % 8)) % 8);
    for (let pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
    const data = [];
    for (let i = 0; i < bits.length; i += 8) data.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
    return draw(ver, interleave(ver, data));
  }

  function interleave(ver, data) {
    const blocks = BLOCKS[ver - 1], eccLen = ECC_PER_BLOCK[ver - 1];
    const raw = Math.floor(rawModules(ver) / 8);
    const shortBlocks = blocks - (raw % blocks), shortLen = Math.floor(raw / blocks);
    const divisor = rsDivisor(eccLen);
    const all = [];
    for (let i = 0, k = 0; i < blocks; i++) {
      const part = data.slice(k, k + shortLen - eccLen + (i < shortBlocks ? 0 : 1));
      k += part.length;
      const ecc = rsRemainder(part, divisor);
      if (i < shortBlocks) part.push(0);
      all.push(part.concat(ecc));
    }
    const result = [];
    for (let i = 0; i < all[0].length; i++) {
      all.forEach((block, j) => { if (i !== shortLen - eccLen || j >= shortBlocks) result.push(block[i]); });
    }
    return result;
  }

  function draw(ver, codewords) {
    const size = ver * 4 + 17;
    const dark = Array.from({ length: size }, () => new Array(size).fill(false));
    const fixed = Array.from({ length: size }, () => new Array(size).fill(false));
    const set = (x, y, on) => { dark[y][x] = on; fixed[y][x] = true; };
    for (let i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
    for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
      for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
        const d = Math.max(Math.abs(dx), Math.abs(dy)), x = cx + dx, y = cy + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, d !== 2 && d !== 4);
      }
    }
    const align = alignmentPositions(ver, size);
    align.forEach((ax, i) => align.forEach((ay, j) => {
      if ((i === 0 && j === 0) || (i === 0 && j === align.length - 1) || (i === align.length - 1 && j === 0)) return;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }));
    formatBits(set, size, 0);
    if (ver >= 7) {
      let rem = ver;
      for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      const bits = (ver << 12) | rem;
      for (let i = 0; i < 18; i++) {
        const a = size - 11 + (i % 3), b = Math.floor(i / 3);
        set(a, b, bit(bits, i)); set(b, a, bit(bits, i));
      }
    }
    let i = 0;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (let vert = 0; vert < size; vert++) for (let j = 0; j < 2; j++) {
        const x = right - j, upward = ((right + 1) & 2) === 0, y = upward ? size - 1 - vert : vert;
        if (!fixed[y][x] && i < codewords.length * 8) { dark[y][x] = bit(codewords[i >>> 3], 7 - (i & 7)); i++; }
      }
    }
    let best = 0, bestPenalty = Infinity;
    for (let mask = 0; mask < 8; mask++) {
      formatBits(set, size, mask); applyMask(dark, fixed, mask);
      const p = penalty(dark);
      if (p < bestPenalty) { best = mask; bestPenalty = p; }
      applyMask(dark, fixed, mask);
    }
    formatBits(set, size, best); applyMask(dark, fixed, best);
    return { version: ver, size, dark };
  }

  function alignmentPositions(ver, size) {
    if (ver === 1) return [];
    const count = Math.floor(ver / 7) + 2;
    const step = ver === 32 ? 26 : Math.ceil((ver * 4 + 4) / (count * 2 - 2)) * 2;
    const result = [6];
    for (let pos = size - 7; result.length < count; pos -= step) result.splice(1, 0, pos);
    return result;
  }
  function formatBits(set, size, mask) {
    const data = (FORMAT_M << 3) | mask;
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    for (let i = 0; i <= 5; i++) set(8, i, bit(bits, i));
    set(8, 7, bit(bits, 6)); set(8, 8, bit(bits, 7)); set(7, 8, bit(bits, 8));
    for (let i = 9; i < 15; i++) set(14 - i, 8, bit(bits, i));
    for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(bits, i));
    for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(bits, i));
    set(8, size - 8, true);
  }
  function applyMask(dark, fixed, mask) {
    const size = dark.length;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      let invert;
      switch (mask) {
        case 0: invert = (x + y) % 2 === 0; break;
        case 1: invert = y % 2 === 0; break;
        case 2: invert = x % 3 === 0; break;
        case 3: invert = (x + y) % 3 === 0; break;
        case 4: invert = (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0; break;
        case 5: invert = ((x * y) % 2) + ((x * y) % 3) === 0; break;
        case 6: invert = (((x * y) % 2) + ((x * y) % 3)) % 2 === 0; break;
        default: invert = (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
      }
      if (!fixed[y][x] && invert) dark[y][x] = !dark[y][x];
    }
  }
  // Runs of five or more, 2x2 blocks and the dark/light balance (rules N1, N2, N4);
  // any mask gives a valid code, this only picks a readable one.
  function penalty(dark) {
    const size = dark.length;
    let result = 0, darkCount = 0;
    for (let a = 0; a < size; a++) {
      let runRow = 1, runCol = 1;
      for (let b = 1; b < size; b++) {
        if (dark[a][b] === dark[a][b - 1]) { runRow++; if (runRow === 5) result += 3; else if (runRow > 5) result++; } else runRow = 1;
        if (dark[b][a] === dark[b - 1][a]) { runCol++; if (runCol === 5) result += 3; else if (runCol > 5) result++; } else runCol = 1;
      }
    }
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      if (dark[y][x]) darkCount++;
      if (x + 1 < size && y + 1 < size) {
        const c = dark[y][x];
        if (c === dark[y][x + 1] && c === dark[y + 1][x] && c === dark[y + 1][x + 1]) result += 3;
      }
    }
    const total = size * size;
    return result + (Math.ceil(Math.abs(darkCount * 20 - total * 10) / total) - 1) * 10;
  }

  // An SVG image of the code with a four-module quiet zone, one path of dark squares.
  function svg(text, label) {
    const code = encode(text);
    const border = 4, dim = code.size + border * 2;
    let path = "";
    code.dark.forEach((row, y) => row.forEach((on, x) => { if (on) path += `M${x + border},${y + border}h1v1h-1z`; }));
    const title = String(label || "QR code").replace(/[<&>"]/g, "");
    return { version: code.version, markup: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${dim} ${dim}" role="img" aria-label="${title}" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path d="${path}" fill="#000"/></svg>` };
  }

  window.HealthledgerQr = { encode, svg };
})();
