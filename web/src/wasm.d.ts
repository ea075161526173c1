/** esbuild's file loader (scripts/build-web.ts): a .wasm import is the URL of its file in the build. */
declare module '*.wasm' {
  const url: string;
  export default url;
}
