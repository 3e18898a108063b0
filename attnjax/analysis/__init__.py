"""Analysis of translations and attention: sacreBLEU scores, alignment error rates against gold
links, and heatmaps."""
