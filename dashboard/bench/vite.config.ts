// Builds the chart benchmark page (bench/dashboard.py).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: __dirname,
  base: "./",
  plugins: [react()],
  build: { emptyOutDir: true },
});
