# The trade-off curve of the knobs (tests/week/experiments.sh runs it): on-time rate against the
# median idle lead, one point per setting (medians over seeds), labelled with the setting.
#   gnuplot -e "summary='summary.tsv'; out='tradeoff.svg'" tradeoff.gp
set terminal svg size 900,560 dynamic font "sans,11"
set output out
set datafile separator "\t"
set grid
set title "vrm knobs: dedicated reservations on time vs idle lead (median over seeds)"
set xlabel "median idle lead of a vacated host (s)"
set ylabel "ready before the start (%)"
set offsets graph 0.05, graph 0.15, graph 0.05, graph 0.05
set key bottom right
plot summary every ::1 using 6:3 with points pt 7 ps 1.2 title "all counted", \
     summary every ::1 using 6:3:1 with labels offset char 1,0.6 left font "sans,9" notitle, \
     summary every ::1 using 6:4 with points pt 6 ps 1.2 title "whose vacate began", \
     summary every ::1 using 6:24 with points pt 4 ps 1.0 title "... whose agents stayed up"
