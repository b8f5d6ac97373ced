// placeholder: bundles src/plugin.ts into dist/fake-cni
