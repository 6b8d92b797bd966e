set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics nomirror
set output '/work/main/docs/img/commands-throughput.png'
set title 'Commands: shopcqrs over HTTP vs pgbench (same SQL)'
set ylabel 'per second'
plot '/work/main/bench/results/suite-20261126T223630Z/commands.dat' using 2:xtic(1) title 'shopcqrs', '' using 3 title 'pgbench'
