set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set logscale x
set logscale y
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)
set xlabel 'percentile'
set ylabel 'latency ms'
set key top left
set output '/work/main/docs/img/queries-latency.png'
set title 'Query latency distribution (HTTP, closed loop)'
plot '/work/main/bench/results/suite-20261126T223630Z/lat-view-read.dat' using 1:2 with lines lw 2 title 'view separated', '/work/main/bench/results/suite-20261126T223630Z/lat-view-write.dat' using 1:2 with lines lw 2 dt 2 title 'view single', '/work/main/bench/results/suite-20261126T223630Z/lat-history-read.dat' using 1:2 with lines lw 2 title 'history separated', '/work/main/bench/results/suite-20261126T223630Z/lat-history-write.dat' using 1:2 with lines lw 2 dt 2 title 'history single', '/work/main/bench/results/suite-20261126T223630Z/lat-search-read.dat' using 1:2 with lines lw 2 title 'search separated', '/work/main/bench/results/suite-20261126T223630Z/lat-search-write.dat' using 1:2 with lines lw 2 dt 2 title 'search single', '/work/main/bench/results/suite-20261126T223630Z/lat-mix-read.dat' using 1:2 with lines lw 2 title 'mix separated', '/work/main/bench/results/suite-20261126T223630Z/lat-mix-write.dat' using 1:2 with lines lw 2 dt 2 title 'mix single'
