# The week's plot: idle lead of every vacated host and prediction error of every vacate over the
# week (tests/week/run_week.sh runs it: gnuplot -e "dir='RUN_DIR'" week.gp).
set terminal svg size 900,640 dynamic font "sans,11"
set output dir."/week.svg"
set multiplot layout 2,1 title "vrm: a simulated week (".dir.")"
set grid
set xrange [0:*]
set xlabel "day of the week"
set ylabel "idle lead (min)"
set key top right
plot dir."/lead.dat" using 1:2 with points pt 7 ps 0.5 title "host empty -> start - clone time"
set ylabel "vacate makespan error (%)"
plot dir."/error.dat" using 1:2 with points pt 7 ps 0.5 lc rgb "#c03020" title "(actual - predicted) / predicted", \
     0 with lines lc rgb "gray" notitle
unset multiplot
