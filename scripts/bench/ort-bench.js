/* SPDX-License-Identifier: LGPL-2.1-or-later */
// ONNX Runtime (onnxruntime-node, CPU) on the graph clip_vision.py exports,
// for the peer benchmark (bench-peers.sh).
// Usage: node ort-bench.js MODEL.onnx IMAGE_SIZE THREADS ITERATIONS
//        INPUT.f32 OUTPUT.f32 BATCH...
// Prints ms/image per batch size (as ORT_NAME, default onnxruntime);
// writes the raw embedding of INPUT.f32.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, size, threads, iterations, inputPath, outputPath, ...batches] =
      process.argv.slice(2);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const imageFloats = 3 * size * size;
  const file = fs.readFileSync(inputPath);
  const input = new Float32Array(
      file.buffer.slice(file.byteOffset, file.byteOffset + file.length));

  const one = new ort.Tensor('float32', input, [1, 3, Number(size), Number(size)]);
  const result = await session.run({ pixels: one });
  fs.writeFileSync(outputPath, Buffer.from(result.embedding.data.buffer));

  for (const batch of batches.map(Number)) {
    const pixels = new Float32Array(batch * imageFloats);
    for (let i = 0; i < batch; i++)
      pixels.set(input, i * imageFloats);
    const feeds = {
      pixels: new ort.Tensor('float32', pixels, [batch, 3, Number(size), Number(size)]),
    };
    await session.run(feeds); // warm-up
    const start = process.hrtime.bigint();
    for (let i = 0; i < Number(iterations); i++)
      await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const name = process.env.ORT_NAME || 'onnxruntime';
    console.log(`${name} batch ${batch}: ${(ms / (batch * iterations)).toFixed(1)} ms/image`);
  }
}

main().catch((e) => {
  console.error(`ort-bench: ${e.message}`);
  process.exit(1);
});
