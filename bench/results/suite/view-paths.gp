set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics nomirror
set output '/work/main/docs/img/view-paths.png'
set title 'Order view: HTTP from Redis / from the read PostgreSQL vs redis-benchmark / pgbench'
set ylabel 'requests per second'
set key top left
plot '/work/main/bench/results/suite-20261126T223630Z/view-paths.dat' using 2:xtic(1) title 'shopcqrs over HTTP', '' using 3 title 'raw baseline (redis-benchmark GET / pgbench select)'
