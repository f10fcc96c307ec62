//! `ExportMetricsServiceRequest` → one `otel_metrics_*` table per metric type.
//! Every data point becomes a row; the columns all metric tables share are
//! built by [`Common`], the type's own by its `*Values` builder.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use duckdb::arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Metric, exemplar, exponential_histogram_data_point::Buckets, metric::Data,
    number_data_point,
};

use super::{
    AttrsBuilder, ListOffsets, TableRows, append_hex, column_type, record_batch, service_name, ts,
};
use crate::schema::{EXP_HISTOGRAM, GAUGE, HISTOGRAM, SUM, SUMMARY};

pub fn encode_metrics(req: &ExportMetricsServiceRequest) -> Result<Vec<TableRows>, ArrowError> {
    let mut gauge = (Common::new(), NumberValues::default());
    let mut sum = (Common::new(), NumberValues::default());
    let mut hist = (Common::new(), HistogramValues::default());
    let mut exp = (Common::new(), ExpHistogramValues::default());
    let mut summary = (Common::new(), SummaryValues::default());

    for rm in &req.resource_metrics {
        let res_attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let ctx = Context {
                    res_attrs,
                    res_schema_url: &rm.schema_url,
                    scope: sm.scope.as_ref(),
                    scope_schema_url: &sm.schema_url,
                    service: service_name(res_attrs),
                    metric,
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            gauge.0.append(
                                &ctx,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            )?;
                            gauge.1.append(p.value.as_ref(), None);
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for p in &s.data_points {
                            sum.0.append(
                                &ctx,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            )?;
                            sum.1.append(
                                p.value.as_ref(),
                                Some((s.aggregation_temporality, s.is_monotonic)),
                            );
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            hist.0.append(
                                &ctx,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            )?;
                            let v = &mut hist.1;
                            v.count.append_value(p.count);
                            v.sum.append_option(p.sum);
                            v.bucket_counts.values().append_slice(&p.bucket_counts);
                            v.bucket_counts.append(true);
                            v.explicit_bounds.values().append_slice(&p.explicit_bounds);
                            v.explicit_bounds.append(true);
                            v.min.append_option(p.min);
                            v.max.append_option(p.max);
                            v.temporality.append_value(h.aggregation_temporality);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            exp.0.append(
                                &ctx,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            )?;
                            let v = &mut exp.1;
                            v.count.append_value(p.count);
                            v.sum.append_option(p.sum);
                            v.scale.append_value(p.scale);
                            v.zero_count.append_value(p.zero_count);
                            append_buckets(
                                &mut v.positive_offset,
                                &mut v.positive_counts,
                                p.positive.as_ref(),
                            );
                            append_buckets(
                                &mut v.negative_offset,
                                &mut v.negative_counts,
                                p.negative.as_ref(),
                            );
                            v.min.append_option(p.min);
                            v.max.append_option(p.max);
                            v.zero_threshold.append_value(p.zero_threshold);
                            v.temporality.append_value(h.aggregation_temporality);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for p in &s.data_points {
                            summary.0.append(
                                &ctx,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &[],
                            )?;
                            let v = &mut summary.1;
                            v.count.append_value(p.count);
                            v.sum.append_value(p.sum);
                            for q in &p.quantile_values {
                                v.quantile.append_value(q.quantile);
                                v.value.append_value(q.value);
                            }
                            v.quantiles.push(p.quantile_values.len());
                        }
                    }
                    None => {}
                }
            }
        }
    }

    let mut out = Vec::new();
    if gauge.0.rows > 0 {
        let values = vec![Arc::new(gauge.1.value.finish()) as ArrayRef];
        out.push(gauge.0.finish(GAUGE, values)?);
    }
    if sum.0.rows > 0 {
        let v = &mut sum.1;
        let values: Vec<ArrayRef> = vec![
            Arc::new(v.value.finish()),
            Arc::new(v.temporality.finish()),
            Arc::new(v.monotonic.finish()),
        ];
        out.push(sum.0.finish(SUM, values)?);
    }
    if hist.0.rows > 0 {
        let v = &mut hist.1;
        let values: Vec<ArrayRef> = vec![
            Arc::new(v.count.finish()),
            Arc::new(v.sum.finish()),
            Arc::new(v.bucket_counts.finish()),
            Arc::new(v.explicit_bounds.finish()),
            Arc::new(v.min.finish()),
            Arc::new(v.max.finish()),
            Arc::new(v.temporality.finish()),
        ];
        out.push(hist.0.finish(HISTOGRAM, values)?);
    }
    if exp.0.rows > 0 {
        let v = &mut exp.1;
        let values: Vec<ArrayRef> = vec![
            Arc::new(v.count.finish()),
            Arc::new(v.sum.finish()),
            Arc::new(v.scale.finish()),
            Arc::new(v.zero_count.finish()),
            Arc::new(v.positive_offset.finish()),
            Arc::new(v.positive_counts.finish()),
            Arc::new(v.negative_offset.finish()),
            Arc::new(v.negative_counts.finish()),
            Arc::new(v.min.finish()),
            Arc::new(v.max.finish()),
            Arc::new(v.zero_threshold.finish()),
            Arc::new(v.temporality.finish()),
        ];
        out.push(exp.0.finish(EXP_HISTOGRAM, values)?);
    }
    if summary.0.rows > 0 {
        let v = &mut summary.1;
        let quantiles = v.quantiles.finish(
            &column_type(SUMMARY, "ValueAtQuantiles"),
            vec![Arc::new(v.quantile.finish()), Arc::new(v.value.finish())],
        )?;
        let values: Vec<ArrayRef> = vec![
            Arc::new(v.count.finish()),
            Arc::new(v.sum.finish()),
            quantiles,
        ];
        out.push(summary.0.finish(SUMMARY, values)?);
    }
    Ok(out)
}

fn append_buckets(
    offset: &mut Int32Builder,
    counts: &mut ListBuilder<UInt64Builder>,
    b: Option<&Buckets>,
) {
    offset.append_value(b.map_or(0, |b| b.offset));
    counts
        .values()
        .append_slice(b.map_or(&[][..], |b| &b.bucket_counts[..]));
    counts.append(true);
}

/// Where a data point sits: its resource, scope and metric.
struct Context<'a> {
    res_attrs: &'a [KeyValue],
    res_schema_url: &'a str,
    scope: Option<&'a InstrumentationScope>,
    scope_schema_url: &'a str,
    service: &'a str,
    metric: &'a Metric,
}

/// Columns every metric table has, before and after the type's own.
#[derive(Debug)]
struct Common {
    rows: usize,
    resource_attrs: AttrsBuilder,
    resource_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attrs: AttrsBuilder,
    scope_dropped: UInt32Builder,
    scope_schema_url: StringBuilder,
    service_name: StringBuilder,
    metric_name: StringBuilder,
    metric_description: StringBuilder,
    metric_unit: StringBuilder,
    attrs: AttrsBuilder,
    start_time: TimestampNanosecondBuilder,
    time: TimestampNanosecondBuilder,
    flags: UInt32Builder,
    exemplars: ListOffsets,
    ex_attrs: AttrsBuilder,
    ex_time: TimestampNanosecondBuilder,
    ex_value: Float64Builder,
    ex_span_id: StringBuilder,
    ex_trace_id: StringBuilder,
    metadata: AttrsBuilder,
}

impl Common {
    fn new() -> Self {
        Self {
            rows: 0,
            resource_attrs: AttrsBuilder::new(),
            resource_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attrs: AttrsBuilder::new(),
            scope_dropped: UInt32Builder::new(),
            scope_schema_url: StringBuilder::new(),
            service_name: StringBuilder::new(),
            metric_name: StringBuilder::new(),
            metric_description: StringBuilder::new(),
            metric_unit: StringBuilder::new(),
            attrs: AttrsBuilder::new(),
            start_time: TimestampNanosecondBuilder::new(),
            time: TimestampNanosecondBuilder::new(),
            flags: UInt32Builder::new(),
            exemplars: ListOffsets::new(),
            ex_attrs: AttrsBuilder::new(),
            ex_time: TimestampNanosecondBuilder::new(),
            ex_value: Float64Builder::new(),
            ex_span_id: StringBuilder::new(),
            ex_trace_id: StringBuilder::new(),
            metadata: AttrsBuilder::new(),
        }
    }

    fn append(
        &mut self,
        ctx: &Context<'_>,
        attrs: &[KeyValue],
        start: u64,
        time: u64,
        flags: u32,
        exemplars: &[Exemplar],
    ) -> Result<(), ArrowError> {
        self.rows += 1;
        self.resource_attrs.append(ctx.res_attrs)?;
        self.resource_schema_url.append_value(ctx.res_schema_url);
        let scope = ctx.scope;
        self.scope_name.append_value(scope.map_or("", |s| &s.name));
        self.scope_version
            .append_value(scope.map_or("", |s| &s.version));
        self.scope_attrs
            .append(scope.map_or(&[][..], |s| &s.attributes))?;
        self.scope_dropped
            .append_value(scope.map_or(0, |s| s.dropped_attributes_count));
        self.scope_schema_url.append_value(ctx.scope_schema_url);
        self.service_name.append_value(ctx.service);
        self.metric_name.append_value(&ctx.metric.name);
        self.metric_description
            .append_value(&ctx.metric.description);
        self.metric_unit.append_value(&ctx.metric.unit);
        self.attrs.append(attrs)?;
        self.start_time.append_value(ts(start));
        self.time.append_value(ts(time));
        self.flags.append_value(flags);
        for e in exemplars {
            self.ex_attrs.append(&e.filtered_attributes)?;
            self.ex_time.append_value(ts(e.time_unix_nano));
            self.ex_value
                .append_option(e.value.as_ref().map(|v| match v {
                    exemplar::Value::AsDouble(d) => *d,
                    exemplar::Value::AsInt(i) => *i as f64,
                }));
            append_hex(&mut self.ex_span_id, &e.span_id);
            append_hex(&mut self.ex_trace_id, &e.trace_id);
        }
        self.exemplars.push(exemplars.len());
        self.metadata.append(&ctx.metric.metadata)
    }

    fn finish(
        mut self,
        table: &'static str,
        values: Vec<ArrayRef>,
    ) -> Result<TableRows, ArrowError> {
        let (resource_attrs, resource_types) = self.resource_attrs.finish();
        let (scope_attrs, scope_types) = self.scope_attrs.finish();
        let (attrs, attr_types) = self.attrs.finish();
        let (ex_attrs, ex_types) = self.ex_attrs.finish();
        let (metadata, _) = self.metadata.finish();
        let exemplars = self.exemplars.finish(
            &column_type(table, "Exemplars"),
            vec![
                ex_attrs,
                ex_types,
                Arc::new(self.ex_time.finish()),
                Arc::new(self.ex_value.finish()),
                Arc::new(self.ex_span_id.finish()),
                Arc::new(self.ex_trace_id.finish()),
            ],
        )?;
        let mut columns: Vec<ArrayRef> = vec![
            resource_attrs,
            Arc::new(self.resource_schema_url.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            scope_attrs,
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()),
            Arc::new(self.service_name.finish()),
            Arc::new(self.metric_name.finish()),
            Arc::new(self.metric_description.finish()),
            Arc::new(self.metric_unit.finish()),
            attrs,
            Arc::new(self.start_time.finish()),
            Arc::new(self.time.finish()),
        ];
        columns.extend(values);
        columns.extend([
            Arc::new(self.flags.finish()) as ArrayRef,
            exemplars,
            resource_types,
            scope_types,
            attr_types,
            metadata,
        ]);
        record_batch(table, columns)
    }
}

/// Gauge and sum values. Integer points are stored as DOUBLE, as the
/// ClickHouse exporter does; integers beyond 2^53 lose precision.
#[derive(Debug, Default)]
struct NumberValues {
    value: Float64Builder,
    temporality: Int32Builder,
    monotonic: BooleanBuilder,
}

impl NumberValues {
    fn append(&mut self, v: Option<&number_data_point::Value>, sum: Option<(i32, bool)>) {
        self.value.append_option(v.map(|v| match v {
            number_data_point::Value::AsDouble(d) => *d,
            number_data_point::Value::AsInt(i) => *i as f64,
        }));
        if let Some((temporality, monotonic)) = sum {
            self.temporality.append_value(temporality);
            self.monotonic.append_value(monotonic);
        }
    }
}

#[derive(Debug, Default)]
struct HistogramValues {
    count: UInt64Builder,
    sum: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    min: Float64Builder,
    max: Float64Builder,
    temporality: Int32Builder,
}

#[derive(Debug, Default)]
struct ExpHistogramValues {
    count: UInt64Builder,
    sum: Float64Builder,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    positive_offset: Int32Builder,
    positive_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_counts: ListBuilder<UInt64Builder>,
    min: Float64Builder,
    max: Float64Builder,
    zero_threshold: Float64Builder,
    temporality: Int32Builder,
}

#[derive(Debug)]
struct SummaryValues {
    count: UInt64Builder,
    sum: Float64Builder,
    quantiles: ListOffsets,
    quantile: Float64Builder,
    value: Float64Builder,
}

impl Default for SummaryValues {
    fn default() -> Self {
        Self {
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            quantiles: ListOffsets::new(),
            quantile: Float64Builder::new(),
            value: Float64Builder::new(),
        }
    }
}
