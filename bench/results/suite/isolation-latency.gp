set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set logscale x
set logscale y
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)
set xlabel 'percentile'
set ylabel 'latency ms'
set key top left
set output '/work/main/docs/img/isolation-latency.png'
set title 'Write latency (place+pay) alone and under saturating reads'
plot '/work/main/bench/results/suite-20261126T223630Z/lat-iso-read-idle.dat' using 1:2 with lines lw 2 title 'separated idle', '/work/main/bench/results/suite-20261126T223630Z/lat-iso-read-saturated.dat' using 1:2 with lines lw 2 dt 2 title 'separated saturated', '/work/main/bench/results/suite-20261126T223630Z/lat-iso-write-idle.dat' using 1:2 with lines lw 2 title 'single idle', '/work/main/bench/results/suite-20261126T223630Z/lat-iso-write-saturated.dat' using 1:2 with lines lw 2 dt 2 title 'single saturated'
