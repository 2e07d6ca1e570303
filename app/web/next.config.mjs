/** @type {import('next').NextConfig} */
const nextConfig = {
  // Self-contained server (server.js + the traced node_modules) for the container image.
  output: 'standalone',
  // No image optimisation: keeps sharp out of the runtime and nothing is written for images.
  images: { unoptimized: true },
  // No source maps in what ships (both are the defaults; stated so nobody turns them on by accident).
  productionBrowserSourceMaps: false,
  experimental: { serverSourceMaps: false },
  poweredByHeader: false,
  // Never trace the optional sharp / libvips binaries into .next/standalone.
  outputFileTracingExcludes: {
    '*': ['node_modules/sharp/**', 'node_modules/@img/**'],
  },
};

export default nextConfig;
