set terminal pngcairo size 900,480 font 'sans,10'
set grid ytics
set key top right
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics nomirror
set output '/work/main/docs/img/read-scaling.png'
set title 'Queries over one vs two read PostgreSQL servers (same clients, 2 shared cores)'
set ylabel 'requests per second'
plot '/work/main/bench/results/suite-20261126T223630Z/read-scaling.dat' using 2:xtic(1) title 'one read DB (1 API)', '' using 3 title 'two read DBs (2 APIs, round-robin)'
