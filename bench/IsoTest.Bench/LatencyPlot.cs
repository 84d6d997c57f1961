using ScottPlot;

namespace IsoTest.Bench;

/// <summary>Median latency per peer (bars, p90 as a whisker) for each benchmark group, on a log axis.</summary>
internal static class LatencyPlot
{
    // Bars start at this many milliseconds: below every figure here, and a round decade on the log axis.
    private const double FloorMs = 1;

    private static readonly string[] PeerOrder =
        ["IsoTest engine", "crun run", "IsoTest Docker backend", "docker run", "Testcontainers"];

    public static void Write(IReadOnlyList<(string Label, IReadOnlyList<PlotPoint> Points)> groups, string path)
    {
        var plot = new Plot();
        var peers = groups.SelectMany(g => g.Points.Select(p => Canonical(p.Peer))).Distinct()
            .OrderBy(p => Array.IndexOf(PeerOrder, p) is var i && i < 0 ? int.MaxValue : i).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        var slot = peers.Count + 1;
        var baseLog = Math.Log10(FloorMs);
        var maxLog = baseLog;

        for (var g = 0; g < groups.Count; g++)
        {
            foreach (var point in groups[g].Points)
            {
                var p = peers.IndexOf(Canonical(point.Peer));
                var x = (g * slot) + p;
                var median = Math.Log10(Math.Max(point.Median, FloorMs));
                var p90 = Math.Log10(Math.Max(point.P90, FloorMs));
                maxLog = Math.Max(maxLog, p90);
                var bar = plot.Add.Bar(new Bar { Position = x, Value = median, ValueBase = baseLog, FillColor = palette.GetColor(p), Size = 0.8 });
                bar.ValueLabelStyle.IsVisible = false;
                var whisker = plot.Add.Line(x, median, x, p90);
                whisker.LineWidth = 2;
                whisker.Color = Colors.Black;
                var cap = plot.Add.Line(x - 0.15, p90, x + 0.15, p90);
                cap.LineWidth = 2;
                cap.Color = Colors.Black;
                var text = plot.Add.Text(Label(point.Median), x, p90);
                text.LabelFontSize = 13;
                text.LabelAlignment = Alignment.LowerCenter;
                text.LabelOffsetY = -4;
            }
        }

        // Log axis: values are plotted as log10(ms); ticks are labelled with the milliseconds they stand for.
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var decade = (int)Math.Floor(baseLog); decade <= (int)Math.Ceiling(maxLog) + 1; decade++)
        {
            ticks.AddMajor(decade, Label(Math.Pow(10, decade)) + " ms");
            for (var m = 2; m < 10; m++)
            {
                ticks.AddMinor(decade + Math.Log10(m));
            }
        }

        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.Left.Label.Text = "median per fixture, ms (log scale; whisker = p90)";
        plot.Grid.MajorLineColor = Colors.Gray.WithAlpha(0.4);
        plot.Grid.MinorLineColor = Colors.Gray.WithAlpha(0.12);

        var groupTicks = new ScottPlot.TickGenerators.NumericManual();
        for (var g = 0; g < groups.Count; g++)
        {
            groupTicks.AddMajor((g * slot) + ((peers.Count - 1) / 2.0), groups[g].Label);
        }

        plot.Axes.Bottom.TickGenerator = groupTicks;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-0.8, (groups.Count * slot) - 1.2, baseLog, Math.Ceiling(maxLog + 0.35));

        for (var p = 0; p < peers.Count; p++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = peers[p], FillColor = palette.GetColor(p) });
        }

        plot.Legend.IsVisible = true;
        plot.Legend.Alignment = Alignment.UpperLeft;
        plot.Title("IsoTest vs peers: time per container fixture (lower is better)");
        plot.SavePng(path, 1100, 620);
    }

    /// <summary>Table names carry details ("docker run --rm"); the plot's legend groups them by peer.</summary>
    private static string Canonical(string peer) =>
        PeerOrder.FirstOrDefault(p => peer.StartsWith(p, StringComparison.Ordinal)) ?? peer;

    private static string Label(double ms) =>
        ms.ToString(ms < 1 ? "0.0#" : ms < 10 ? "0.#" : "#,0", System.Globalization.CultureInfo.InvariantCulture);
}
