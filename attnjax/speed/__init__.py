"""How fast the models run: `bench`, the speed protocol's attnjax side (`attnjax bench`), and
`hugepages`, the `attnjax` command's transparent huge pages. Kept light: the command imports
`hugepages` before anything else."""
