# Builds the `infron` gateway and the `infron-mock-provider` demo provider.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY crates crates
COPY migrations migrations
# The api crate's manifest names its end-to-end test target under tests/.
COPY tests tests
RUN cargo build --release --locked --bin infron --bin infron-mock-provider

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 infron
WORKDIR /app
COPY --from=build /src/target/release/infron /src/target/release/infron-mock-provider /usr/local/bin/
COPY config config
USER infron
ENV INFRON_BIND=0.0.0.0:8080 INFRON_CATALOG=/app/config/catalog.toml
EXPOSE 8080
ENTRYPOINT ["infron"]
CMD ["serve"]
