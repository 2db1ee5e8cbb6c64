# The week's plot: idle lead of every vacated host, prediction error of every vacate and the
# spread its plan budgeted for, over the week (tests/week/run_week.sh runs it:
# gnuplot -e "dir='RUN_DIR'" week.gp).
set terminal svg size 900,900 dynamic font "sans,11"
set output dir."/week.svg"
set multiplot layout 3,1 title "vrm: a simulated week (".dir.")"
set grid
set xrange [0:*]
set xlabel "day of the week"
set ylabel "idle lead (min)"
set key top right
plot dir."/lead.dat" using 1:2 with points pt 7 ps 0.5 title "host empty -> start - clone time"
set ylabel "vacate makespan error (%)"
plot dir."/error.dat" using 1:2 with points pt 7 ps 0.5 lc rgb "#c03020" title "(actual - predicted) / predicted", \
     0 with lines lc rgb "gray" notitle
set ylabel "plan: makespan at the quantile / mean"
set yrange [0:*]
plot dir."/error.dat" using 1:4 with points pt 7 ps 0.5 lc rgb "#2060c0" title "the spread vrmd budgets for (1 = none)", \
     1 with lines lc rgb "gray" notitle
unset multiplot
