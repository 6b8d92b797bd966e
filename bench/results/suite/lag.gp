set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics nomirror
set logscale y
set yrange [0.1:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb 'gray40'
set label 'p50 target 1 ms' at graph 0.01, first 1 offset 0,0.6 font ',8'
set arrow from graph 0, first 5 to graph 1, first 5 nohead dt 2 lc rgb 'gray40'
set label 'p99 target 5 ms' at graph 0.01, first 5 offset 0,0.6 font ',8'
set arrow from graph 0, first 10 to graph 1, first 10 nohead dt 2 lc rgb 'gray40'
set label 'broker p99 target (issue) 10 ms' at graph 0.01, first 10 offset 0,0.6 font ',8'
set output '/work/main/docs/img/lag.png'
set title 'Projection lag, commit to applied (server), outbox vs broker'
set ylabel 'ms (log scale)'
set xlabel 'commands per second'
set key top left
plot '/work/main/bench/results/suite-20261126T223630Z/lag.dat' using 2:xtic(1) title 'outbox p50' lc rgb '#4c72b0', '' using 3 title 'outbox p99' lc rgb '#9bb4da', '' using 4 title 'broker p50' lc rgb '#dd8452', '' using 5 title 'broker p99' lc rgb '#f0c09c'
